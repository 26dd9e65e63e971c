package unixfs

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxNameLen is the longest entry name ValidName accepts, in bytes.
const MaxNameLen = 255

// ValidName reports whether name can name a file or folder that peer shares
// or writes: one path element that is safe to create below any folder on
// any common system. It is stricter than CheckName, which says what a
// UnixFS folder may hold. The rule, exactly:
//
//   - 1 to MaxNameLen (255) bytes of valid UTF-8;
//   - not "." or "..";
//   - no '/' or '\' (path separators), no ':' (Windows drive letters such
//     as "C:" and NTFS alternate data streams);
//   - no control character: U+0000 to U+001F (NUL among them), U+007F, and
//     U+0080 to U+009F.
//
// Everything else is allowed, including names that only some systems
// refuse (Windows' reserved device names such as "CON" or "aux.c", trailing
// dots or spaces): they are legitimate where they were shared, so the code
// that writes files on such a system must map them.
//
// The error wraps ErrName and says what is wrong with which name. ValidName
// is pure and safe for concurrent use.
func ValidName(name string) error {
	if p := nameProblem(name); p != "" {
		return fmt.Errorf("%w %s: %s", ErrName, quoteName(name), p)
	}
	return nil
}

// nameProblem returns what is wrong with name, or "" if nothing is.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("%d bytes long, limit %d", len(name), MaxNameLen)
	case name == "." || name == "..":
		return "a relative path element"
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	}
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			return fmt.Sprintf("contains the path separator %q", r)
		case r == ':':
			return "contains ':' (drive letter or alternate data stream)"
		case r == 0:
			return "contains NUL"
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return fmt.Sprintf("contains the control character %U", r)
		}
	}
	return ""
}

// quoteName quotes name for an error message, cut short if it is long.
func quoteName(name string) string {
	const show = 64
	if len(name) > show {
		return strconv.Quote(name[:show]) + "..."
	}
	return strconv.Quote(name)
}
