// Package contracttest holds only tests: it proves that the wire contracts in module schemas
// agree with themselves and with the normalizer. The schemas module imports nothing but the
// standard library, so the JSON Schema validator (santhosh-tekuri/jsonschema/v6) and the YAML
// parser live here, in the normalizer module, the first producer of those contracts.
package contracttest
