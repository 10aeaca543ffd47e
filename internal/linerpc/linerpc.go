// Package linerpc serves JSON-line requests, one per line on a reader, one
// response per line on a writer: how tests and benchmarks drive helper
// processes they start inside network namespaces.
package linerpc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Serve decodes requests from in and writes handle's responses to out until
// in ends or handle says stop (its response is still written).
func Serve[Req, Resp any](in io.Reader, out io.Writer, handle func(Req) (resp Resp, stop bool)) error {
	dec, enc := json.NewDecoder(bufio.NewReader(in)), json.NewEncoder(out)
	for {
		var req Req
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("decode request: %w", err)
		}
		resp, stop := handle(req)
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("encode response: %w", err)
		}
		if stop {
			return nil
		}
	}
}
