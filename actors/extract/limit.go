package extract

import (
	"context"
	"errors"
	"fmt"
)

// ErrOutputTooLarge marks a chunk whose output is larger than a chunk may
// produce: it is permanent, since the same pages give the same output.
var ErrOutputTooLarge = errors.New("extract: the chunk's output is larger than allowed")

// LimitOutput returns x, with an output over maxBytes failing the chunk
// permanently instead of being returned (a result must fit in one
// node-to-node message). maxBytes <= 0 returns x unchanged.
func LimitOutput(x Extractor, maxBytes int) Extractor {
	if maxBytes <= 0 {
		return x
	}
	return &outputLimit{Extractor: x, max: maxBytes}
}

// LimitOutput applies LimitOutput to every extractor of r.
func (r Registry) LimitOutput(maxBytes int) Registry {
	out := make(Registry, len(r))
	for name, x := range r {
		out[name] = LimitOutput(x, maxBytes)
	}
	return out
}

type outputLimit struct {
	Extractor
	max int
}

var (
	_ Extractor        = (*outputLimit)(nil)
	_ RequestValidator = (*outputLimit)(nil)
)

// Extract implements Extractor.
func (o *outputLimit) Extract(ctx context.Context, req Request) (Result, error) {
	res, err := o.Extractor.Extract(ctx, req)
	if err == nil && len(res.Output) > o.max {
		return Result{Usage: res.Usage}, Permanent(fmt.Errorf("%w: pages %d-%d produced %.1f MiB, more than the %.1f MiB a chunk may produce (--max-chunk-output-mb); use smaller chunks (chunk_pages)",
			ErrOutputTooLarge, req.FirstPage, req.LastPage, float64(len(res.Output))/(1<<20), float64(o.max)/(1<<20)))
	}
	return res, err
}

// ValidateRequest implements RequestValidator for extractors that do.
func (o *outputLimit) ValidateRequest(req Request) error {
	if v, ok := o.Extractor.(RequestValidator); ok {
		return v.ValidateRequest(req)
	}
	return nil
}
