// The X.509 object identifiers the CA library reads and writes (RFC 5280, RFC 2986, RFC 5758, RFC 4055).
export const OID_COMMON_NAME = '2.5.4.3';
export const OID_SKI = '2.5.29.14';
export const OID_KEY_USAGE = '2.5.29.15';
export const OID_SAN = '2.5.29.17';
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_AKI = '2.5.29.35';
export const OID_EXT_KEY_USAGE = '2.5.29.37';
export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
export const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
export const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
export const OID_ECDSA_SHA384 = '1.2.840.10045.4.3.3';
export const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';
