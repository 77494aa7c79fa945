package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/canaryd/canaryd/internal/testutil"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, want, wantErr string }{
		{name: "trimmed", content: "  s3cret-one\n", want: "s3cret-one"},
		{name: "empty", content: " \n", wantErr: "is empty"},
		{name: "two words", content: "s3cret two", wantErr: "holds more than one word; it must hold the key alone"},
		{name: "too large", content: strings.Repeat("k", MaxSize+1), wantErr: "4097 bytes, more than a key (at most 4096)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			testutil.WriteSecret(t, path, tc.content, time.Now())
			s, err := Open("API key", path, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+" ") || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("err = %v, want %q naming the file and not the content", err, tc.wantErr)
				}
				return
			}
			if err != nil || s.Get() != tc.want {
				t.Fatalf("%v: got %q, want %q", err, s.Get(), tc.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := Open("API key", filepath.Join(dir, "none"), nil); !os.IsNotExist(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		if _, err := Open("API key", dir, nil); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})
	if Fixed("inline").Get() != "inline" {
		t.Error("Fixed")
	}
}

// A rotated file is read again at the next Get, a file emptied or removed mid-rotation
// keeps the last secret (with a warning), and no secret reaches the log.
func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	t0 := time.Now().Add(-time.Hour)
	testutil.WriteSecret(t, path, "s3cret-old\n", t0)
	core, logs := observer.New(zapcore.DebugLevel)
	s, err := Open("API key", path, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func()
		want   string
		log    string
	}{
		{"unchanged", func() {}, "s3cret-old", ""},
		{"same size, new time", func() { testutil.WriteSecret(t, path, "s3cret-new", t0.Add(time.Minute)) }, "s3cret-new", "secret file reread"},
		{"same time, new size", func() { testutil.WriteSecret(t, path, "s3cret-newer", t0.Add(time.Minute)) }, "s3cret-newer", "secret file reread"},
		{"emptied", func() { testutil.WriteSecret(t, path, "", t0.Add(2*time.Minute)) }, "s3cret-newer", "secret file unreadable; the last secret read stays in use"},
		{"removed", func() { _ = os.Remove(path) }, "s3cret-newer", "secret file unreadable; the last secret read stays in use"},
		{"back", func() { testutil.WriteSecret(t, path, "s3cret-back", t0.Add(3*time.Minute)) }, "s3cret-back", "secret file reread"},
	}
	for _, st := range steps {
		before := logs.Len()
		st.change()
		if got := s.Get(); got != st.want {
			t.Errorf("%s: %q, want %q", st.name, got, st.want)
		}
		var msgs []string
		for _, e := range logs.All()[before:] {
			msgs = append(msgs, e.Message)
		}
		if st.log == "" && len(msgs) != 0 || st.log != "" && (len(msgs) != 1 || msgs[0] != st.log) {
			t.Errorf("%s: logged %q, want %q", st.name, msgs, st.log)
		}
	}
	for _, e := range logs.All() {
		text := e.Message
		for _, f := range e.Context {
			text += " " + f.Key + "=" + f.String
			if err, ok := f.Interface.(error); ok {
				text += " " + err.Error()
			}
		}
		if strings.Contains(text, "s3cret") || !strings.Contains(text, "secret=API key") || !strings.Contains(text, "file="+path) {
			t.Errorf("log line %q: want the secret's name and file, not the secret", text)
		}
	}
}
