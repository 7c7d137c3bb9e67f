// `exportTo` (which namespaces see a Service, VirtualService or DestinationRule): the rules live in
// crds/rules/visibility.ts, which the validator's cross-checks share; re-exported here for the model's readers.
export {
  coveredBy,
  EXPORT_ALL,
  isVisibleTo,
  normalizeExportTo,
  overlaps,
  parseExportToAnnotation,
  unionExportTo,
  type ExportTo,
} from '../../crds/rules/visibility.js';
