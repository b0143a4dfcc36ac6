package redact

import (
	"bytes"
	"math/big"
	"net/netip"
	"regexp"
	"strings"
)

// builtin returns the built-in detector of a name in Builtins.
func builtin(name string) detector {
	switch name {
	case Secrets:
		return detector{name: Secrets, label: "SECRET", minLen: 16, maybe: func(b []byte, f *features) bool { return f.secretPair && secretCandidates(b) != 0 }, find: findSecrets}
	case Cards:
		return detector{name: Cards, label: "CARD", minLen: 13, maybe: func(_ []byte, f *features) bool { return f.digits >= 13 }, find: findCards}
	case IBAN:
		return detector{name: IBAN, label: "IBAN", minLen: 15, maybe: func(b []byte, f *features) bool { return f.digits >= 2 && maybeIBAN(b) }, find: regexFinder(ibanRE, validIBAN)}
	case Email:
		return detector{name: Email, label: "EMAIL", minLen: 6, maybe: func(b []byte, _ *features) bool { return bytes.IndexByte(b, '@') >= 0 }, find: regexFinder(emailRE, nil)}
	case Phone:
		return detector{name: Phone, label: "PHONE", minLen: 7, maybe: func(_ []byte, f *features) bool { return f.digits >= 7 }, find: regexFinder(phoneRE, validPhone)}
	case IP:
		return detector{name: IP, label: "IP", minLen: 3, maybe: func(b []byte, _ *features) bool { return maybeIP(b) }, find: findIPs}
	}
	panic("redact: no built-in detector " + name)
}

// regexFinder returns the matches of re (its first group when it has one)
// that valid accepts (nil: all).
func regexFinder(re *regexp.Regexp, valid func(string) bool) func(string) [][2]int {
	group := re.NumSubexp() > 0
	return func(s string) [][2]int {
		var out [][2]int
		for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
			a, b := m[0], m[1]
			if group {
				if m[2] < 0 {
					continue
				}
				a, b = m[2], m[3]
			}
			if a == b || (valid != nil && !valid(s[a:b])) {
				continue
			}
			out = append(out, [2]int{a, b})
		}
		return out
	}
}

// ---------------------------------------------------------------- secrets

// secretPattern is one token format: its regular expression, whose first
// group is the part replaced, and literals one of which every match
// contains (a cheap test before the expression runs).
type secretPattern struct {
	hints []string
	re    *regexp.Regexp
}

// secretPatterns are the token formats of common providers.
var secretPatterns = []secretPattern{
	// PEM private keys, the whole block.
	{[]string{"-----BEGIN "}, regexp.MustCompile(`(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----)`)},
	// Anthropic, OpenAI (sk-…, sk-proj-…), and other sk- keys.
	{[]string{"sk-"}, regexp.MustCompile(`\b(sk-(?:ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,})`)},
	// AWS access key ids.
	{[]string{"AKIA", "ASIA", "ABIA", "ACCA"}, regexp.MustCompile(`\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b`)},
	// GitHub tokens.
	{[]string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, regexp.MustCompile(`\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})`)},
	// Google API keys.
	{[]string{"AIza"}, regexp.MustCompile(`\b(AIza[0-9A-Za-z_-]{35})`)},
	// Slack tokens.
	{[]string{"xox"}, regexp.MustCompile(`\b(xox[abposre]-[A-Za-z0-9-]{10,})`)},
	// Stripe secret and restricted keys.
	{[]string{"_live_", "_test_"}, regexp.MustCompile(`\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,})`)},
	// NVIDIA API keys.
	{[]string{"nvapi-"}, regexp.MustCompile(`\b(nvapi-[A-Za-z0-9_-]{20,})`)},
	// JSON Web Tokens.
	{[]string{"eyJ"}, regexp.MustCompile(`\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})`)},
	// Any bearer token.
	{[]string{"earer", "EARER"}, regexp.MustCompile(`(?i:\bbearer)\s+([A-Za-z0-9._~+/-]{16,}=*)`)},
	// A password in a URL: scheme://user:password@host.
	{[]string{"://"}, regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@"'<>]+:([^\s/@"'<>]+)@`)},
}

// secretStarts lists, by first byte, the patterns whose hints start with it.
var secretStarts = func() (t [256][]int) {
	for i, p := range secretPatterns {
		for _, h := range p.hints {
			t[h[0]] = append(t[h[0]], i)
		}
	}
	return t
}()

// secretPairs is the set of the first two bytes of every hint (bit
// 256*a+b), a cheap test before secretStarts.
var secretPairs = func() (t [256 * 256 / 64]uint64) {
	for _, p := range secretPatterns {
		for _, h := range p.hints {
			k := int(h[0])<<8 | int(h[1])
			t[k/64] |= 1 << (k % 64)
		}
	}
	return t
}()

// features are what one pass over a text finds, for the detectors' cheap
// tests.
type features struct {
	digits     int  // ASCII digits
	secretPair bool // the first two bytes of a secret hint occur
}

// scan computes the features of b in one pass.
func scan(b []byte) features {
	var f features
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= '0' && c <= '9' {
			f.digits++
			continue
		}
		if !f.secretPair && i+1 < len(b) {
			if k := int(c)<<8 | int(b[i+1]); secretPairs[k/64]&(1<<(k%64)) != 0 {
				f.secretPair = true
			}
		}
	}
	return f
}

// secretCandidates returns the set (bit i for secretPatterns[i]) of the
// patterns one of whose hints s contains, in one pass over s.
func secretCandidates[T string | []byte](s T) uint32 {
	var set uint32
	for i := 0; i+1 < len(s); i++ {
		if k := int(s[i])<<8 | int(s[i+1]); secretPairs[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		for _, pi := range secretStarts[s[i]] {
			if set&(1<<pi) != 0 {
				continue
			}
			for _, h := range secretPatterns[pi].hints {
				if hasPrefixAt(s, i, h) {
					set |= 1 << pi
					break
				}
			}
		}
	}
	return set
}

// hasPrefixAt reports whether s[i:] starts with h.
func hasPrefixAt[T string | []byte](s T, i int, h string) bool {
	if len(s)-i < len(h) {
		return false
	}
	for k := 0; k < len(h); k++ {
		if s[i+k] != h[k] {
			return false
		}
	}
	return true
}

func findSecrets(s string) [][2]int {
	var out [][2]int
	cand := secretCandidates(s)
	if cand == 0 {
		return nil
	}
	for i, p := range secretPatterns {
		if cand&(1<<i) == 0 {
			continue
		}
		for _, m := range p.re.FindAllStringSubmatchIndex(s, -1) {
			if m[2] >= 0 && m[3] > m[2] {
				out = append(out, [2]int{m[2], m[3]})
			}
		}
	}
	if len(out) > 1 {
		out = sortRanges(out)
	}
	return out
}

// ---------------------------------------------------------------- cards

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// findCards finds runs of digit groups joined by single spaces or dashes
// and, within each run, the first consecutive groups that hold 13 to 19
// digits, start with 2 to 6 and pass validCard.
func findCards(s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		// The run starting at i, as groups [start, end).
		var groups [][2]int
		j := i
		for {
			g := j
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			groups = append(groups, [2]int{g, j})
			if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
				j++
				continue
			}
			break
		}
		runStart, runEnd := i, j
		i = j
		// Part of a word, a decimal number or a dotted identifier: not a card.
		if (runStart > 0 && (isWord(s[runStart-1]) || s[runStart-1] == '.' || s[runStart-1] == '+')) ||
			(runEnd < len(s) && (isWord(s[runEnd]) || (s[runEnd] == '.' && runEnd+1 < len(s) && isDigit(s[runEnd+1])))) {
			continue
		}
		for a := 0; a < len(groups); a++ {
			if s[groups[a][0]] < '2' || s[groups[a][0]] > '6' {
				continue
			}
			n := 0
			for b := a; b < len(groups) && n <= 19; b++ {
				n += groups[b][1] - groups[b][0]
				if n >= 13 && n <= 19 && validCard(s[groups[a][0]:groups[b][1]]) {
					out = append(out, [2]int{groups[a][0], groups[b][1]})
					a = b
					break
				}
			}
		}
	}
	return out
}

// validCard checks the digits of s: 13–19 of them, one kind of separator
// used consistently, not all the same digit, and the Luhn checksum.
func validCard(s string) bool {
	digits := make([]byte, 0, 19)
	var sep byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			digits = append(digits, c)
			continue
		}
		if sep != 0 && c != sep {
			return false
		}
		sep = c
	}
	if len(digits) < 13 || len(digits) > 19 {
		return false
	}
	same := true
	for _, d := range digits[1:] {
		if d != digits[0] {
			same = false
			break
		}
	}
	if same {
		return false
	}
	return luhn(digits)
}

// luhn reports whether the digits pass the Luhn check.
func luhn(digits []byte) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// ---------------------------------------------------------------- IBAN

var ibanRE = regexp.MustCompile(`\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b`)

// maybeIBAN reports whether s has two capitals followed by two digits.
func maybeIBAN(s []byte) bool {
	for i := 0; i+3 < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' && s[i+1] >= 'A' && s[i+1] <= 'Z' && isDigit(s[i+2]) && isDigit(s[i+3]) {
			return true
		}
	}
	return false
}

// validIBAN checks an IBAN's length and its mod-97 check digits.
func validIBAN(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	var b strings.Builder
	for _, c := range s[4:] + s[:4] {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c >= 'A' && c <= 'Z':
			b.WriteString(itoa(int(c-'A') + 10))
		default:
			return false
		}
	}
	n, ok := new(big.Int).SetString(b.String(), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}

func itoa(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

// ---------------------------------------------------------------- e-mail

var emailRE = regexp.MustCompile(`\b[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b`)

// ---------------------------------------------------------------- phone

// phoneRE is an international number (+ and 7–15 digits with separators) or
// a national one with an area code in parentheses or separated groups.
var phoneRE = regexp.MustCompile(`(?:\+[1-9][0-9]{0,2}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{1,4}(?:[ .-]?[0-9]{2,4}){1,4}|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4})\b`)

// validPhone checks a phone number has 7 to 15 digits.
func validPhone(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n >= 7 && n <= 15
}

// ---------------------------------------------------------------- IP

var (
	ipv4RE = regexp.MustCompile(`\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b`)
	ipv6RE = regexp.MustCompile(`[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*`)
)

// maybeIP reports whether s has three digit.digit places or two colons.
func maybeIP(s []byte) bool {
	dots := 0
	for i := 1; i+1 < len(s); i++ {
		if s[i] == '.' && isDigit(s[i-1]) && isDigit(s[i+1]) {
			dots++
			if dots >= 3 {
				return true
			}
		}
	}
	return bytes.Count(s, []byte{':'}) >= 2
}

func findIPs(s string) [][2]int {
	var out [][2]int
	for _, m := range ipv4RE.FindAllStringIndex(s, -1) {
		a, b := m[0], m[1]
		// A version number or a longer dotted number: not an address.
		if (a > 0 && s[a-1] == '.') || (b < len(s) && s[b] == '.' && b+1 < len(s) && s[b+1] >= '0' && s[b+1] <= '9') {
			continue
		}
		if addr, err := netip.ParseAddr(s[a:b]); err == nil && addr.Is4() {
			out = append(out, [2]int{a, b})
		}
	}
	for _, m := range ipv6RE.FindAllStringIndex(s, -1) {
		a, b := m[0], m[1]
		if (a > 0 && isWord(s[a-1])) || (b < len(s) && isWord(s[b])) {
			continue
		}
		cand := strings.TrimRight(s[a:b], ".:")
		if strings.Count(cand, ":") < 2 || !strings.ContainsAny(cand, "0123456789abcdefABCDEF") {
			continue
		}
		addr, err := netip.ParseAddr(cand)
		if err != nil || !addr.Is6() {
			continue
		}
		out = append(out, [2]int{a, a + len(cand)})
	}
	if len(out) > 1 {
		out = sortRanges(out)
	}
	return out
}

func isWord(c byte) bool {
	return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// sortRanges sorts ranges by start and drops overlapping ones.
func sortRanges(r [][2]int) [][2]int {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j][0] < r[j-1][0]; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
	out := r[:1]
	for _, x := range r[1:] {
		if x[0] >= out[len(out)-1][1] {
			out = append(out, x)
		}
	}
	return out
}
