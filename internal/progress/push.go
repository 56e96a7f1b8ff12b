package progress

// PushEvent is one thing a push did at a registry: data the publisher
// reports, which a Printer renders (in plain mode, one line each).
type PushEvent struct {
	// Repo is the destination repository (REGISTRY/PATH).
	Repo string
	What PushWhat
	// Ref is the blob's digest, or the manifest's tag or digest.
	Ref string
	// Size is the blob's size.
	Size int64
	// From is the repository a mounted blob came from.
	From string
}

// PushWhat says what happened to a blob or manifest.
type PushWhat int

const (
	// BlobExists: the registry already held the blob.
	BlobExists PushWhat = iota
	// BlobMounted: the registry linked the blob from another repository.
	BlobMounted
	// BlobUploaded: the blob was sent.
	BlobUploaded
	// ManifestWritten: a manifest (and so, by tag, a tag) was written.
	ManifestWritten
)

// Push renders a push event: a line in plain mode, nothing otherwise
// (a terminal shows the bars).
func (p *Printer) Push(ev PushEvent) {
	if p == nil || p.mode != Plain {
		return
	}
	short := ev.Ref
	if len(short) > 19 {
		short = short[:19]
	}
	switch ev.What {
	case BlobExists:
		p.Printf("%s: blob %s already there (%s)", ev.Repo, short, Bytes(ev.Size))
	case BlobMounted:
		p.Printf("%s: blob %s mounted from %s (%s)", ev.Repo, short, ev.From, Bytes(ev.Size))
	case BlobUploaded:
		p.Printf("%s: blob %s uploaded (%s)", ev.Repo, short, Bytes(ev.Size))
	case ManifestWritten:
		p.Printf("%s: manifest %s written", ev.Repo, ev.Ref)
	}
}
