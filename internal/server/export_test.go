package server

// RoutesOf lists "METHOD /path" of every route and mount of s, with path
// parameters written "{}", for the document coverage test.
func RoutesOf(s *Server) []string {
	var out []string
	for _, r := range s.routes() {
		out = append(out, r.method+" "+normalize(r.path))
	}
	for _, m := range s.mounts() {
		if m.prefix == "/v1/" {
			// The gateway passes every method through; the document
			// describes the ones OpenAI's API uses.
			out = append(out, "GET /v1/{}", "POST /v1/{}", "DELETE /v1/{}")
			continue
		}
		out = append(out, "GET "+m.prefix+"{}")
	}
	return out
}

func normalize(p string) string {
	out := []byte{}
	skip := false
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '{':
			skip = true
			out = append(out, "{}"...)
		case p[i] == '}':
			skip = false
		case !skip:
			out = append(out, p[i])
		}
	}
	return string(out)
}
