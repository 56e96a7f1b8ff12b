package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular marks state that is not a regular file: a FIFO (whose
// open would wait for a writer), a device (/dev/zero never ends), a
// directory or a socket.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge marks a file larger than its reader allows.
var ErrTooLarge = errors.New("larger than allowed")

// OpenRegular opens path for reading when it is a regular file: it is
// opened without waiting (O_NONBLOCK, so a FIFO's open returns at once)
// and refused, wrapping ErrNotRegular, unless the opened file is a
// regular one. In the workspace no link that leads out of it is followed
// (a link to /dev/zero is a *LinkOutError). Files the repository or a
// cache can plant are read so.
func (w Workspace) OpenRegular(path string) (*os.File, error) {
	flag := os.O_RDONLY | syscall.O_NONBLOCK
	var f *os.File
	var err error
	if rel, ok := w.inside(path); ok {
		var root *os.Root
		var res string
		if root, res, err = w.open(rel, false); err != nil {
			return nil, err
		}
		if res == "" {
			res = "."
		}
		f, err = root.OpenFile(res, flag, 0)
		root.Close()
	} else {
		f, err = os.OpenFile(path, flag, 0)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, NotRegular(path, st.Mode())
	}
	return f, nil
}

// NotRegular is the error for path, which is of mode m and not a regular
// file: it wraps ErrNotRegular and says what the file is.
func NotRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kindOf(m))
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// ReadRegular reads the regular file path whole (see OpenRegular),
// refusing one of more than max bytes (wrapping ErrTooLarge) after
// reading at most max+1.
func (w Workspace) ReadRegular(path string, max int64) ([]byte, error) {
	f, err := w.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w: it has more than %d bytes", path, ErrTooLarge, max)
	}
	return b, nil
}

// ReadFile reads path, following no link out of the workspace.
func (w Workspace) ReadFile(path string) ([]byte, error) {
	rel, ok := w.inside(path)
	if !ok {
		return os.ReadFile(path)
	}
	root, res, err := w.open(rel, false)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(res)
}
