package progress

import (
	"bytes"

	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a buffer the printer's redraw loop and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// --progress maps to a mode: auto picks TTY on a terminal only; case and
// spaces do not matter; anything else is an error naming the value and
// the choices.
func TestParseMode(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		term bool
		want Mode
	}{
		{"", true, TTY}, {"", false, Plain}, {"auto", true, TTY}, {"AUTO", false, Plain},
		{"tty", false, TTY}, {" TTY ", true, TTY}, {"plain", true, Plain}, {"Plain", false, Plain},
		{"quiet", true, Quiet}, {"QUIET", false, Quiet},
	} {
		got, err := ParseMode(c.in, c.term)
		if err != nil || got != c.want {
			t.Errorf("ParseMode(%q, terminal=%v) = %v, %v; want %v", c.in, c.term, got, err, c.want)
		}
	}
	for _, bad := range []string{"fancy", "ttyy", "0"} {
		_, err := ParseMode(bad, true)
		if err == nil {
			t.Errorf("ParseMode(%q) gave no error", bad)
			continue
		}
		for _, want := range []string{`"` + bad + `"`, "auto", "tty", "plain", "quiet"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ParseMode(%q): %q does not say %s", bad, err, want)
			}
		}
	}
}

// Plain output (CI logs) is one line per Printf with every control
// character but the tab dropped, and no bar at all: a bar, its end and
// Close write nothing.
func TestPlainIsLinesWithoutControlCharacters(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := New(&buf, Plain)
	if p.Mode() != Plain {
		t.Fatalf("mode %v", p.Mode())
	}
	calls := 0
	b := p.Bar("127.0.0.1:5000/app:1", 100, func() int64 { calls++; return 50 })
	p.Printf("push %s:\t%s", "reg/app", "done\x1b[31m red\x07\r\x00\x7f")
	p.Printf("second line\nwith a newline inside")
	p.Finish(b, "pushed")
	p.Close()
	want := "push reg/app:\tdone[31m red\nsecond linewith a newline inside\n"
	if got := buf.String(); got != want {
		t.Errorf("plain output %q, want %q", got, want)
	}
	if calls != 0 {
		t.Errorf("a plain printer asked the bar's progress %d times", calls)
	}
	if b == nil || b.Name != "127.0.0.1:5000/app:1" {
		t.Errorf("Bar returned %+v", b)
	}
}

// Quiet writes nothing; a nil printer is quiet and every method is safe.
func TestQuietAndNilWriteNothing(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := New(&buf, Quiet)
	p.Printf("nothing %d", 1)
	b := p.Bar("x", 10, func() int64 { return 5 })
	p.Finish(b, "done")
	p.Close()
	if buf.Len() != 0 {
		t.Errorf("quiet wrote %q", buf.String())
	}
	var np *Printer
	if np.Mode() != Quiet {
		t.Errorf("a nil printer's mode is %v", np.Mode())
	}
	np.Printf("x")
	nb := np.Bar("y", 1, func() int64 { return 1 })
	np.Finish(nb, "ok")
	np.Close()
	if nb == nil || nb.Name != "y" {
		t.Errorf("a nil printer's Bar returned %+v", nb)
	}
}

// On a terminal, the bars stay below the log lines: each redraw first
// erases the bars drawn before (one "up, erase line" per bar), never a
// log line; the bar shows the fraction done, the bytes and the status;
// Close leaves the final bars on screen, with the status Finish set, and
// stops redrawing.
func TestTTYRedrawsBarsBelowTheLog(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	p := New(&buf, TTY)
	var done atomic.Int64
	done.Store(1024)
	long := "127.0.0.1:5000/" + strings.Repeat("very-long-name/", 4) + "app:1"
	a := p.Bar("127.0.0.1:5000/app:1", 2048, done.Load)
	p.Bar(long, 0, func() int64 { return 0 })
	p.Bar("over", 10, func() int64 { return 25 })
	p.Printf("first log line")
	time.Sleep(400 * time.Millisecond) // at least one redraw by the ticker (150 ms)
	p.Printf("second log line")
	done.Store(2048)
	p.Finish(a, "pushed")
	p.Close()
	out := buf.String()
	// Close stopped the loop: nothing more is written.
	time.Sleep(300 * time.Millisecond)
	if buf.String() != out {
		t.Errorf("the printer wrote after Close")
	}

	const erase = "\x1b[1A\x1b[2K"
	for _, l := range []string{"first log line\n", "second log line\n"} {
		if strings.Count(out, l) != 1 {
			t.Errorf("log line %q appears %d times in %q", l, strings.Count(out, l), out)
		}
	}
	// Every bar line drawn is erased once, except the last drawing's three.
	drawn := strings.Count(out, "] ")
	if drawn < 9 || drawn%3 != 0 {
		t.Fatalf("%d bar lines drawn, want at least three drawings of three bars:\n%q", drawn, out)
	}
	if erased := strings.Count(out, erase); erased != drawn-3 {
		t.Errorf("%d bar lines drawn and %d erased, want all but the last three erased (no log line erased):\n%q", drawn, erased, out)
	}
	// The log lines were written where the bars were, with the bars
	// drawn again below.
	first := strings.Index(out, "first log line")
	if first < 0 || !strings.Contains(out[first:], "127.0.0.1:5000/app:1") {
		t.Errorf("no bar below the first log line:\n%q", out)
	}
	midway := out[:strings.Index(out, "second log line")]
	if !strings.Contains(midway, "[============            ]  50% 1.0KiB/2.0KiB") {
		t.Errorf("the half-done bar is not drawn as 50%%:\n%q", midway)
	}
	final := strings.Split(strings.TrimSuffix(out[strings.LastIndex(out, erase)+len(erase):], "\n"), "\n")
	if len(final) < 3 {
		t.Fatalf("final drawing %q", final)
	}
	final = final[len(final)-3:]
	if !strings.HasPrefix(final[0], "127.0.0.1:5000/app:1 ") || !strings.Contains(final[0], "[========================] pushed 2.0KiB/2.0KiB") {
		t.Errorf("final bar %q, want it full, with its status", final[0])
	}
	wantName := "…" + long[len(long)-39:]
	if !strings.HasPrefix(final[1], wantName+" ") || !strings.Contains(final[1], "[========================] 100% 0B/0B") {
		t.Errorf("bar of a long name and no bytes: %q, want it clipped to %q and full", final[1], wantName)
	}
	if !strings.Contains(final[2], "[========================] 100% 10B/10B") {
		t.Errorf("a bar whose progress passes its total: %q, want it at its total", final[2])
	}
	if strings.Contains(out, "] pushed") && strings.Index(out, "] pushed") < strings.Index(out, "second log line") {
		t.Errorf("the status shows before Finish")
	}
	p.Close() // a second Close is harmless
}

// Bytes is for people: whole bytes below a KiB, then one decimal in the
// largest binary unit.
func TestBytes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0B"}, {1, "1B"}, {1023, "1023B"}, {1024, "1.0KiB"}, {1536, "1.5KiB"}, {1<<20 - 1, "1024.0KiB"},
		{1 << 20, "1.0MiB"}, {5*1<<20 + 1<<19, "5.5MiB"}, {1 << 30, "1.0GiB"}, {3 << 30, "3.0GiB"}, {1 << 40, "1024.0GiB"},
	} {
		if got := Bytes(c.n); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
