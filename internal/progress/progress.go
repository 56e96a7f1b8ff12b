// Package progress shows what hoist is doing: on a terminal, one live bar
// per destination; elsewhere (CI logs), plain lines without control
// characters.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Mode is how progress is shown.
type Mode int

const (
	Quiet Mode = iota
	Plain
	TTY
)

// ParseMode maps the --progress setting to a mode; auto picks TTY when the
// output is a terminal.
func ParseMode(s string, isTerminal bool) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		if isTerminal {
			return TTY, nil
		}
		return Plain, nil
	case "tty":
		return TTY, nil
	case "plain":
		return Plain, nil
	case "quiet":
		return Quiet, nil
	}
	return Plain, fmt.Errorf("progress %q: want auto, tty, plain or quiet", s)
}

// Printer writes log lines and, in TTY mode, redraws the bars below them.
type Printer struct {
	mode  Mode
	w     io.Writer
	mu    sync.Mutex
	bars  []*Bar
	drawn int
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// New returns a printer writing to w (stderr, usually).
func New(w io.Writer, mode Mode) *Printer {
	p := &Printer{mode: mode, w: w}
	if mode == TTY {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.loop()
	}
	return p
}

// Mode returns the printer's mode.
func (p *Printer) Mode() Mode {
	if p == nil {
		return Quiet
	}
	return p.mode
}

func (p *Printer) loop() {
	defer close(p.done)
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// Printf writes one log line (a newline is added).
func (p *Printer) Printf(format string, args ...any) {
	if p == nil || p.mode == Quiet {
		return
	}
	line := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == TTY {
		p.clear()
		fmt.Fprintln(p.w, line)
		p.redraw()
		return
	}
	fmt.Fprintln(p.w, sanitize(line))
}

// sanitize drops control characters, so CI logs stay plain.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// Bar is the live progress of one destination.
type Bar struct {
	Name   string
	total  int64
	doneFn func() int64
	start  time.Time
	status string
}

// Bar adds a bar of total bytes whose progress doneFn reports. In modes
// other than TTY it draws nothing.
func (p *Printer) Bar(name string, total int64, doneFn func() int64) *Bar {
	b := &Bar{Name: name, total: total, doneFn: doneFn, start: time.Now()}
	if p == nil || p.mode != TTY {
		return b
	}
	p.mu.Lock()
	p.bars = append(p.bars, b)
	p.mu.Unlock()
	return b
}

// Finish freezes the bar with a final status word.
func (p *Printer) Finish(b *Bar, status string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	b.status = status
	p.mu.Unlock()
}

// Close stops redrawing and leaves the final bars on screen.
func (p *Printer) Close() {
	if p == nil || p.mode != TTY {
		return
	}
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.mu.Lock()
		p.redraw()
		p.bars, p.drawn = nil, 0
		p.mu.Unlock()
	})
}

func (p *Printer) clear() {
	for i := 0; i < p.drawn; i++ {
		fmt.Fprint(p.w, "\x1b[1A\x1b[2K")
	}
	p.drawn = 0
}

func (p *Printer) redraw() {
	p.clear()
	for _, b := range p.bars {
		fmt.Fprintln(p.w, b.line())
	}
	p.drawn = len(p.bars)
}

func (b *Bar) line() string {
	done := b.doneFn()
	if done > b.total {
		done = b.total
	}
	frac := 1.0
	if b.total > 0 {
		frac = float64(done) / float64(b.total)
	}
	const width = 24
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	secs := time.Since(b.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / secs
	}
	status := b.status
	if status == "" {
		status = fmt.Sprintf("%3.0f%%", frac*100)
	}
	return fmt.Sprintf("%-40s [%s] %s %s/%s %s/s", clip(b.Name, 40), bar, status, Bytes(done), Bytes(b.total), Bytes(int64(rate)))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

// Bytes formats a byte count for people.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
