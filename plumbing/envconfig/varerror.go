package envconfig

import "errors"

// VarError is a connection failure with the variable the operator should check (a refused
// password names the password's variable, an unknown certificate authority the CA file's). It
// never holds a secret: it adds only the variable's name to the client library's error.
type VarError struct {
	Variable string
	Err      error
}

func (e *VarError) Error() string { return e.Err.Error() + " (check " + e.Variable + ")" }
func (e *VarError) Unwrap() error { return e.Err }

// VariableName is the variable to check.
func (e *VarError) VariableName() string { return e.Variable }

// Explain wraps err in a VarError naming the variable suspect returns for it. An error that
// already names one, an error suspect cannot place (""), and nil are returned as they are.
func Explain(err error, suspect func(error) string) error {
	if err == nil {
		return nil
	}
	var ve *VarError
	if errors.As(err, &ve) {
		return err
	}
	if v := suspect(err); v != "" {
		return &VarError{Variable: v, Err: err}
	}
	return err
}
