package flywheel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits of the tokens file (server.auth.tokens_file).
const (
	// FileSecretMinLen is the shortest secret the tokens file accepts:
	// "openssl rand -hex 32" gives 64 characters, "openssl rand -base64 32" 44.
	FileSecretMinLen = 32
	// FileSecretMaxLen is the longest.
	FileSecretMaxLen = 200
	// fileSecretMinDistinct is how many different characters a secret
	// needs at least, which refuses placeholders such as 32 "x"s.
	fileSecretMinDistinct = 8
	// FileTokenNameMaxLen bounds a token name in the file.
	FileTokenNameMaxLen = 64
	// FileTokenIDPrefix starts the id of every token the file manages.
	FileTokenIDPrefix = "file-"
)

// FileTokenID returns the id of the file token with the name.
func FileTokenID(name string) string { return FileTokenIDPrefix + name }

// ParseTokensFile reads a tokens file: one token a line, as three fields
// separated by spaces or tabs,
//
//	NAME SCOPE SECRET
//
// where NAME is 1 to 64 of A-Z a-z 0-9 . _ -, SCOPE is read, write, admin
// or ingest, and SECRET is 32 to 200 printable characters (generate one
// with "openssl rand -hex 32"). Blank lines and lines starting with # are
// skipped. It returns the tokens with their id (FileTokenID), hash and
// source set, never their secrets. Every bad line is reported, by line
// number, in one joined error; no error message repeats any field of a
// line, since a secret may have been written in the wrong place.
func ParseTokensFile(r io.Reader) ([]Token, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	var (
		out     []Token
		errs    []error
		names   = map[string]int{}
		secrets = map[string]int{}
		line    int
	)
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: "+format, append([]any{line}, args...)...))
	}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			bad("has %d fields; want NAME SCOPE SECRET separated by spaces", len(fields))
			continue
		}
		name, scope, secret := fields[0], fields[1], fields[2]
		ok := true
		if err := checkFileTokenName(name); err != nil {
			bad("%v", err)
			ok = false
		} else if first, dup := names[name]; dup {
			bad("the name is used on line %d already", first)
			ok = false
		}
		sco, err := ParseScope(scope)
		if err != nil {
			bad("the scope is not read, write, admin or ingest")
			ok = false
		}
		if err := checkFileSecret(secret); err != nil {
			bad("%v", err)
			ok = false
		} else if first, dup := secrets[secret]; dup {
			bad("the secret is the same as on line %d; give each token its own", first)
			ok = false
		}
		if !ok {
			continue
		}
		names[name], secrets[secret] = line, line
		out = append(out, Token{ID: FileTokenID(name), Name: name, Scope: sco, Hash: HashSecret(secret), Source: TokenSourceFile})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			errs = append(errs, fmt.Errorf("line %d: longer than 64 KiB", line+1))
		} else {
			errs = append(errs, fmt.Errorf("read: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func checkFileTokenName(name string) error {
	if len(name) > FileTokenNameMaxLen {
		return fmt.Errorf("the name has %d characters; at most %d", len(name), FileTokenNameMaxLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return errors.New("the name may only have letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// checkFileSecret refuses weak or misplaced secrets; its messages never
// repeat the secret.
func checkFileSecret(secret string) error {
	if strings.HasPrefix(secret, TokenPrefix) {
		return fmt.Errorf("the secret starts with %q, the prefix of tokens made by 'flywheel tokens create'; "+
			"generate a new one with: openssl rand -hex 32", TokenPrefix)
	}
	if len(secret) < FileSecretMinLen {
		return fmt.Errorf("the secret has %d characters; it needs at least %d (generate one with: openssl rand -hex 32)",
			len(secret), FileSecretMinLen)
	}
	if len(secret) > FileSecretMaxLen {
		return fmt.Errorf("the secret has %d characters; at most %d", len(secret), FileSecretMaxLen)
	}
	distinct := map[rune]bool{}
	for _, r := range secret {
		if r < '!' || r > '~' {
			return errors.New("the secret may only have printable ASCII characters")
		}
		distinct[r] = true
	}
	if len(distinct) < fileSecretMinDistinct {
		return fmt.Errorf("the secret has only %d different characters; it looks like a placeholder "+
			"(generate one with: openssl rand -hex 32)", len(distinct))
	}
	return nil
}
