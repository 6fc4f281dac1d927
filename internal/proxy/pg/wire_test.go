package pg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func frame(typ byte, body string) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)+4))
	return append(b, body...)
}

func TestMsgReader(t *testing.T) {
	big := string(bytes.Repeat([]byte("x"), 100))
	stream := bytes.Join([][]byte{frame('Q', "select 1\x00"), frame('P', big), frame('S', "")}, nil)
	// A 16-byte buffer forces the large-message path for the middle one.
	r := newMsgReader(bytes.NewReader(stream), 16, 1000)
	var got []string
	for {
		typ, body, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(typ)+":"+string(body))
	}
	want := []string{"Q:select 1\x00", "P:" + big, "S:"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestMsgReaderLimits(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"too large", frame('Q', string(make([]byte, 2000))), ErrMessageTooLarge},
		{"negative length", []byte{'Q', 0xff, 0xff, 0xff, 0xff}, nil},
		{"length below 4", []byte{'Q', 0, 0, 0, 3}, nil},
		{"truncated body", frame('Q', "select 1")[:8], io.ErrUnexpectedEOF},
		{"truncated header", []byte{'Q', 0, 0}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newMsgReader(bytes.NewReader(tt.input), 64, 1000)
			_, _, _, err := r.Next()
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMsgReaderZeroCopyAllocs(t *testing.T) {
	msg := frame('D', "\x00\x01\x00\x00\x00\x05hello")
	stream := bytes.Repeat(msg, 1000)
	rd := bytes.NewReader(stream)
	r := newMsgReader(rd, 32<<10, 1<<20)
	allocs := testing.AllocsPerRun(500, func() {
		if _, _, _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Next allocates %.1f times per message", allocs)
	}
}

// FuzzMsgReader feeds arbitrary bytes to the client message reader: it must
// never panic, never return a body longer than the limit, and never read a
// message whose declared length disagrees with its body.
func FuzzMsgReader(f *testing.F) {
	f.Add(frame('Q', "select 1\x00"))
	f.Add(append(frame('P', "\x00select $1\x00\x00\x01\x00\x00\x00\x17"), frame('S', "")...))
	f.Add([]byte{'Q', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'X', 0, 0, 0, 4})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newMsgReader(bytes.NewReader(data), 16, 256)
		consumed := 0
		for {
			typ, body, raw, err := r.Next()
			if err != nil {
				return
			}
			if len(body) > 256 {
				t.Fatalf("body of %d bytes passed a 256-byte limit", len(body))
			}
			if raw != nil && (len(raw) != len(body)+5 || raw[0] != typ) {
				t.Fatalf("raw and body disagree")
			}
			consumed += len(body) + 5
			if consumed > len(data) {
				t.Fatalf("read %d bytes from %d", consumed, len(data))
			}
		}
	})
}

func BenchmarkMsgReader(b *testing.B) {
	msg := frame('D', "\x00\x02\x00\x00\x00\x0512345\x00\x00\x00\x10abcdefghijklmnop")
	stream := bytes.Repeat(msg, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	rd := bytes.NewReader(stream)
	r := newMsgReader(rd, 32<<10, 1<<20)
	for i := 0; i < b.N; i++ {
		if _, _, _, err := r.Next(); err != nil {
			rd.Reset(stream)
			r = newMsgReader(rd, 32<<10, 1<<20)
		}
	}
}

func TestUnsafeClientEncoding(t *testing.T) {
	for enc, want := range map[string]bool{
		"UTF8": false, "utf-8": false, "SQL_ASCII": false, "LATIN1": false, "auto": false,
		"SJIS": true, "shift_jis_2004": true, "Big5": true, "GBK": true, "gb18030": true, "UHC": true, "win950": true,
	} {
		if got := unsafeClientEncoding(enc); got != want {
			t.Errorf("unsafeClientEncoding(%q) = %v, want %v", enc, got, want)
		}
	}
}

func TestParseBind(t *testing.T) {
	// portal "p", statement "s", formats [text, binary], values ["4111", NULL], results [binary].
	body := []byte("p\x00s\x00")
	body = append(body, 0, 2, 0, 0, 0, 1)
	body = append(body, 0, 2, 0, 0, 0, 4)
	body = append(body, "4111"...)
	body = append(body, 0xff, 0xff, 0xff, 0xff)
	body = append(body, 0, 1, 0, 1)
	b, ok := parseBind(body)
	if !ok || b.portal != "p" || b.stmt != "s" || len(b.values) != 2 || string(b.values[0]) != "4111" || b.values[1] != nil {
		t.Fatalf("parseBind = %+v, %v", b, ok)
	}
	if b.binary(0) || !b.binary(1) || len(b.formats) != 1 || b.formats[0] != 1 {
		t.Errorf("formats: %+v", b)
	}
	for i := range body {
		if _, ok := parseBind(body[:i]); ok {
			t.Errorf("truncated Bind of %d bytes parsed", i)
		}
	}
}
