package progress

import (
	"strings"
	"testing"
)

// A push event renders as the line the publisher printed before events
// were data: in plain mode only, the digest cut to 19 characters, the
// size in Bytes' units.
func TestPushEventLines(t *testing.T) {
	t.Parallel()
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	events := []PushEvent{
		{Repo: "reg/app", What: BlobExists, Ref: digest, Size: 2048},
		{Repo: "reg/app", What: BlobMounted, Ref: digest, Size: 3 << 20, From: "other/app"},
		{Repo: "reg/app", What: BlobUploaded, Ref: digest, Size: 10},
		{Repo: "reg/app", What: ManifestWritten, Ref: "v1"},
	}
	var b strings.Builder
	p := New(&b, Plain)
	for _, ev := range events {
		p.Push(ev)
	}
	want := "reg/app: blob sha256:0123456789ab already there (" + Bytes(2048) + ")\n" +
		"reg/app: blob sha256:0123456789ab mounted from other/app (" + Bytes(3<<20) + ")\n" +
		"reg/app: blob sha256:0123456789ab uploaded (" + Bytes(10) + ")\n" +
		"reg/app: manifest v1 written\n"
	if b.String() != want {
		t.Errorf("plain:\n%s\nwant:\n%s", b.String(), want)
	}
	for _, m := range []Mode{Quiet, TTY} {
		var b strings.Builder
		p := New(&b, m)
		for _, ev := range events {
			p.Push(ev)
		}
		p.Close()
		if strings.Contains(b.String(), "reg/app") {
			t.Errorf("mode %v printed %q", m, b.String())
		}
	}
	var nilPrinter *Printer
	nilPrinter.Push(events[0])
}
