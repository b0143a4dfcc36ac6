package redact

import (
	"math/big"
	"net/netip"
	"regexp"
	"strings"
)

// builtin returns the built-in detector of a name in Builtins.
func builtin(name string) detector {
	switch name {
	case Secrets:
		return detector{name: Secrets, label: "SECRET", maybe: maybeSecret, find: findSecrets}
	case Cards:
		return detector{name: Cards, label: "CARD", maybe: func(s string) bool { return digitCount(s, 13) }, find: findCards}
	case IBAN:
		return detector{name: IBAN, label: "IBAN", maybe: func(s string) bool { return digitCount(s, 2) }, find: regexFinder(ibanRE, validIBAN)}
	case Email:
		return detector{name: Email, label: "EMAIL", maybe: func(s string) bool { return strings.IndexByte(s, '@') >= 0 }, find: regexFinder(emailRE, nil)}
	case Phone:
		return detector{name: Phone, label: "PHONE", maybe: func(s string) bool { return digitCount(s, 7) }, find: regexFinder(phoneRE, validPhone)}
	case IP:
		return detector{name: IP, label: "IP", maybe: maybeIP, find: findIPs}
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

// secretPatterns are the token formats of common providers. Each has one
// group: the part replaced.
var secretPatterns = []string{
	// PEM private keys, the whole block.
	`(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----)`,
	// Anthropic, OpenAI (sk-…, sk-proj-…), and other sk- keys.
	`\b(sk-(?:ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,})`,
	// AWS access key ids.
	`\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b`,
	// GitHub tokens.
	`\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})`,
	// Google API keys.
	`\b(AIza[0-9A-Za-z_-]{35})`,
	// Slack tokens.
	`\b(xox[abposre]-[A-Za-z0-9-]{10,})`,
	// Stripe secret and restricted keys.
	`\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,})`,
	// NVIDIA API keys.
	`\b(nvapi-[A-Za-z0-9_-]{20,})`,
	// JSON Web Tokens.
	`\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})`,
	// Any bearer token.
	`(?i:\bbearer)\s+([A-Za-z0-9._~+/-]{16,}=*)`,
	// A password in a URL: scheme://user:password@host.
	`\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@"'<>]+:([^\s/@"'<>]+)@`,
}

var secretRE = regexp.MustCompile(strings.Join(secretPatterns, "|"))

// secretHints are substrings one of which every secret contains.
var secretHints = []string{"sk-", "KIA", "SIA", "BIA", "CCA", "gh", "AIza", "xox", "_live_", "_test_", "nvapi-", "eyJ", "earer", "EARER", "-----BEGIN", "://"}

func maybeSecret(s string) bool {
	if len(s) < 16 {
		return false
	}
	for _, h := range secretHints {
		if strings.Contains(s, h) {
			return true
		}
	}
	return false
}

func findSecrets(s string) [][2]int {
	var out [][2]int
	for _, m := range secretRE.FindAllStringSubmatchIndex(s, -1) {
		for g := 2; g < len(m); g += 2 {
			if m[g] >= 0 && m[g+1] > m[g] {
				out = append(out, [2]int{m[g], m[g+1]})
				break
			}
		}
	}
	return out
}

// ---------------------------------------------------------------- cards

// cardRE is 13 to 19 digits, each pair maybe separated by one space or dash.
var cardRE = regexp.MustCompile(`\b[2-6](?:[ -]?[0-9]){12,18}\b`)

// digitCount reports whether s has at least n ASCII digits.
func digitCount(s string, n int) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n--
			if n <= 0 {
				return true
			}
		}
	}
	return false
}

func findCards(s string) [][2]int {
	var out [][2]int
	for _, m := range cardRE.FindAllStringIndex(s, -1) {
		a, b := m[0], m[1]
		// Part of a decimal number or a dotted/dashed identifier: not a card.
		if a > 0 && (s[a-1] == '.' || s[a-1] == '-' || s[a-1] == '+') {
			continue
		}
		if b < len(s) && (s[b] == '.' || s[b] == '-') && b+1 < len(s) && s[b+1] >= '0' && s[b+1] <= '9' {
			continue
		}
		if validCard(s[a:b]) {
			out = append(out, [2]int{a, b})
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

func maybeIP(s string) bool {
	return strings.Count(s, ".") >= 3 || strings.Count(s, ":") >= 2
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
