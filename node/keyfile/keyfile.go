package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/internal/atomicfile"
)

// maxKeyFileBytes bounds what Read accepts: a key is under 100 bytes.
const maxKeyFileBytes = 4096

// Write stores k at path with mode 0600, creating the directory (0700) if
// needed. It refuses to overwrite an existing file unless overwrite is set.
func Write(path string, k keys.Signer, overwrite bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keyfile: create %s: %w", dir, err)
	}
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("keyfile: %s already exists; refusing to overwrite a key", path)
		}
	}
	if err := atomicfile.Write(path, []byte(k.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	return nil
}

// ErrPermissions reports a key file others may read.
var ErrPermissions = errors.New("keyfile: key file is readable by group or others")

// Read loads the key at path. It refuses files that are not regular, are
// too large, or are readable by group or others.
func Read(path string) (keys.Signer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keyfile: %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrPermissions, path, perm, path)
	}
	if st.Size() > maxKeyFileBytes {
		return nil, fmt.Errorf("keyfile: %s is %d bytes, too large to be a key", path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	k, err := keys.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("keyfile: %s: %w", path, err)
	}
	return k, nil
}

// Exists reports whether path exists.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
