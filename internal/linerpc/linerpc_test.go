package linerpc

import (
	"bytes"
	"strings"
	"testing"
)

func TestServe(t *testing.T) {
	in := strings.NewReader(`{"n":1}` + "\n" + `{"n":2}` + "\n" + `{"n":-1}` + "\n" + `{"n":9}` + "\n")
	var out bytes.Buffer
	type req struct{ N int }
	type resp struct{ Double int }
	err := Serve(in, &out, func(r req) (resp, bool) { return resp{2 * r.N}, r.N < 0 })
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "{\"Double\":2}\n{\"Double\":4}\n{\"Double\":-2}\n" {
		t.Fatalf("responses %q", got)
	}
	if err := Serve(strings.NewReader("{bad"), &out, func(r req) (resp, bool) { return resp{}, false }); err == nil {
		t.Fatal("malformed request accepted")
	}
}
