// The validator the model uses, as a parameter (crds/validator.ts provides it; the webhook and
// `trellis validate` use the same one, so a user gets the same message from all three). These types are
// the validator's own signature, restated so that the model depends on the contract, not the module:
// pass `validateRoutingResource` (and `formatIssue`) from crds/validator.ts.
import type { DestinationRule, VirtualService } from '../../crds/types.js';

export interface ValidationOrigin {
  file?: string;
  document?: number;
}

export interface ValidationIssue {
  path: string;
  message: string;
  severity: 'error' | 'warning';
}

export interface ValidationResult {
  kind: 'VirtualService' | 'DestinationRule';
  namespace: string;
  name: string;
  issues: ValidationIssue[];
  /** Present when there is no error. */
  resource?: VirtualService | DestinationRule;
}

export type ValidateRoutingResource = (obj: unknown, origin?: ValidationOrigin) => ValidationResult;

export type FormatIssue = (result: ValidationResult, issue: ValidationIssue, origin?: ValidationOrigin) => string;
