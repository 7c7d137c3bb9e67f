// The validator the model uses, as a parameter: crds/validator.ts provides it, and the webhook and
// `trellis validate` use the same one, so a user gets the same message from all three. The model takes the
// functions as arguments (its builder stays pure and testable) and borrows the validator's types.
import type { formatIssue, Origin, validateRoutingResource } from '../../crds/validator.js';

export type { ValidationIssue, ValidationResult } from '../../crds/validator.js';
export type ValidationOrigin = Origin;
export type ValidateRoutingResource = typeof validateRoutingResource;
export type FormatIssue = typeof formatIssue;
