package audit

import (
	"strconv"
	"testing"
)

func TestFactsCache(t *testing.T) {
	var c factsCache
	for range 2 { // a miss, then a hit
		for raw, want := range map[string]string{
			`{"reads":["b"],"command":"SELECT","n":1.50}`: `{"command":"SELECT","n":1.50,"reads":["b"]}`,
			`{"command":"DELETE"}`:                        `{"command":"DELETE"}`,
		} {
			got, err := c.canonical([]byte(raw))
			if err != nil || string(got) != want {
				t.Fatalf("canonical(%s) = %s, %v; want %s", raw, got, err, want)
			}
		}
	}
	if _, err := c.canonical([]byte(`{"a":`)); err == nil {
		t.Fatal("broken facts were accepted")
	}
	// Full: it starts over rather than growing.
	for i := range maxCachedFacts + 10 {
		if _, err := c.canonical([]byte(`{"i":` + strconv.Itoa(i) + `}`)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.m); n > maxCachedFacts {
		t.Fatalf("cache holds %d entries, cap %d", n, maxCachedFacts)
	}
}
