package load

import "errors"

// Errors of the package.
var (
	// ErrInvalidConfig is wrapped by what Config.Validate finds wrong.
	ErrInvalidConfig = errors.New("load: invalid configuration")
	// ErrNoPDF is wrapped when a folder of PDFs has none a scenario can
	// submit.
	ErrNoPDF = errors.New("load: no PDF to submit")
)
