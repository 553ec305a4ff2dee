package envconfig

import (
	"errors"
	"testing"
)

func TestExplain(t *testing.T) {
	denied := errors.New("SASL authentication failed")
	suspect := func(err error) string {
		if errors.Is(err, denied) {
			return "KAFKA_SASL_PASSWORD"
		}
		return ""
	}
	err := Explain(denied, suspect)
	var ve *VarError
	if !errors.As(err, &ve) || ve.VariableName() != "KAFKA_SASL_PASSWORD" || !errors.Is(err, denied) {
		t.Fatalf("Explain = %v, want a VarError naming KAFKA_SASL_PASSWORD around the cause", err)
	}
	if got := err.Error(); got != "SASL authentication failed (check KAFKA_SASL_PASSWORD)" {
		t.Errorf("Error() = %q", got)
	}
	if again := Explain(err, func(error) string { return "OTHER" }); again != err {
		t.Errorf("an error that names a variable was wrapped again: %v", again)
	}
	other := errors.New("timeout")
	if got := Explain(other, suspect); got != other {
		t.Errorf("an error suspect cannot place was wrapped: %v", got)
	}
	if Explain(nil, suspect) != nil {
		t.Error("Explain(nil) != nil")
	}
}
