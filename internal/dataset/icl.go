package dataset

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// DefaultSystemMessage opens the system message of ICL records, as in the
// blueprint.
const DefaultSystemMessage = "You are a helpful assistant that can answer questions and help with tasks.\n" +
	"Here are some examples of how you should respond to different types of requests:"

// RelevanceRatioDefault is the share of semantic_similarity examples chosen
// for relevance (the rest covers other tools) when the config has none.
const RelevanceRatioDefault = 0.7

// EstimateTokens estimates the token count of s without a tokenizer: one
// token per 3.5 bytes of UTF-8 (BPE tokenizers average 3.5 to 4.5 bytes
// per token on English text and JSON), plus the blueprint's 20% safety
// buffer. It errs on the high side, so examples that fit the estimate fit
// the real budget.
func EstimateTokens(s string) int {
	t := (len(s)*2 + 6) / 7
	return t + t*20/100
}

// example is one training record rendered as a few-shot example.
type example struct {
	text   string
	tokens int
	tool   string
}

// exampleText renders a training record the blueprint's way.
func exampleText(r *Record) string {
	var b strings.Builder
	b.WriteString("For example, if the conversation looks like this:\n")
	for _, m := range r.Messages {
		fmt.Fprintf(&b, "%s: %s\n\n", m.Role, contentText(m.Content))
	}
	b.WriteString("\nThen you'll respond with:\n")
	fmt.Fprintf(&b, "%s: %s", r.Answer.Role, contentText(r.Answer.Content))
	if len(r.Calls) > 0 {
		var ind bytes.Buffer
		if err := json.Indent(&ind, r.Answer.ToolCalls, "", "  "); err != nil {
			ind.Write(r.Answer.ToolCalls)
		}
		b.WriteString("\nTool calls:\n")
		b.Write(ind.Bytes())
	}
	return b.String()
}

// iclPlanner chooses few-shot examples from the training set.
type iclPlanner struct {
	cfg      flywheel.ICLConfig
	workload flywheel.WorkloadType
	train    []*Record
	examples []example
	// bySize lists every training index by token count, smallest first.
	bySize []int
	// groups are the uniform selection's tool groups (each smallest
	// first), largest group first, with their quotas.
	groups [][]int
	quotas []int
	// scorer ranks training records for semantic selection (nil for uniform).
	scorer scorer
	// overhead is the token cost of the default system message.
	overhead int
}

func newICLPlanner(cfg flywheel.ICLConfig, workload flywheel.WorkloadType, train []*Record) *iclPlanner {
	p := &iclPlanner{cfg: cfg, workload: workload, train: train, overhead: EstimateTokens(DefaultSystemMessage) + 2}
	p.examples = make([]example, len(train))
	for i, r := range train {
		text := exampleText(r)
		p.examples[i] = example{text: text, tokens: EstimateTokens(text) + 1, tool: r.ToolName()}
	}
	bySize := func(a, b int) int {
		return cmp.Or(cmp.Compare(p.examples[a].tokens, p.examples[b].tokens), cmp.Compare(a, b))
	}
	p.bySize = make([]int, len(train))
	for i := range p.bySize {
		p.bySize[i] = i
	}
	slices.SortFunc(p.bySize, bySize)

	if workload == flywheel.WorkloadToolCalling {
		byTool := map[string][]int{}
		for _, i := range p.bySize {
			byTool[p.examples[i].tool] = append(byTool[p.examples[i].tool], i)
		}
		for _, g := range byTool {
			p.groups = append(p.groups, g)
		}
		slices.SortFunc(p.groups, func(a, b []int) int {
			return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(p.examples[a[0]].tool, p.examples[b[0]].tool))
		})
		// uniform bins: max_examples spread over the tools, the first
		// max%n tools one more; tools beyond max_examples get none.
		n := len(p.groups)
		p.quotas = make([]int, n)
		if n > 0 {
			base, extra := cfg.MaxExamples/n, cfg.MaxExamples%n
			for i := range p.quotas {
				p.quotas[i] = base
				if i < extra {
					p.quotas[i]++
				}
			}
		}
	} else if len(train) > 0 {
		p.groups = [][]int{p.bySize}
		p.quotas = []int{cfg.MaxExamples}
	}
	return p
}

// budget is the number of tokens left for examples beside an eval record.
func (p *iclPlanner) budget(r *Record) int {
	return p.cfg.MaxContextLength - p.cfg.ReservedTokens - EstimateTokens(string(r.Log.Request)) - EstimateTokens(string(r.Log.Response)) - p.overhead
}

// pick chooses the examples for eval record e (its index in the eval set
// is ei, for the scorer).
func (p *iclPlanner) pick(r *Record, ei int) []int {
	if p.cfg.MaxExamples <= 0 || len(p.train) == 0 {
		return nil
	}
	left := p.budget(r)
	if left <= 0 {
		return nil
	}
	used := map[int]bool{}
	var picks []int
	take := func(i int) bool {
		if used[i] || p.examples[i].tokens > left || len(picks) >= p.cfg.MaxExamples {
			return false
		}
		used[i] = true
		left -= p.examples[i].tokens
		picks = append(picks, i)
		return true
	}

	if p.scorer != nil {
		p.pickSemantic(ei, take, used)
	} else {
		p.pickUniform(take)
	}
	// Honour min_examples with the smallest examples that still fit.
	for _, i := range p.bySize {
		if len(picks) >= p.cfg.MinExamples || len(picks) >= p.cfg.MaxExamples || p.examples[i].tokens > left {
			break
		}
		take(i)
	}
	return picks
}

// pickUniform takes examples round-robin over the tool groups within their
// quotas, smallest first; an example that does not fit is skipped (the
// group's larger ones cannot fit either, so the group is done).
func (p *iclPlanner) pickUniform(take func(int) bool) {
	cursor := make([]int, len(p.groups))
	taken := make([]int, len(p.groups))
	for {
		progressed := false
		for g, members := range p.groups {
			if taken[g] >= p.quotas[g] || cursor[g] >= len(members) {
				continue
			}
			i := members[cursor[g]]
			cursor[g]++
			if take(i) {
				taken[g]++
				progressed = true
			} else {
				cursor[g] = len(members)
			}
		}
		if !progressed {
			return
		}
	}
}

// pickSemantic takes the most similar examples; for tool-calling workloads
// relevance_ratio of them by similarity alone and the rest covering tools
// not yet shown. Examples that do not fit are skipped for the next best.
func (p *iclPlanner) pickSemantic(ei int, take func(int) bool, used map[int]bool) {
	// Five candidates per slot (the blueprint's tool-calling K), for
	// generic workloads too, so that a candidate that does not fit can
	// give way to the next best.
	cands := topK(p.scorer.scores(ei), 5*p.cfg.MaxExamples)
	if p.workload != flywheel.WorkloadToolCalling {
		for _, i := range cands {
			take(i)
		}
		return
	}
	ratio := RelevanceRatioDefault
	if sc := p.cfg.SimilarityConfig; sc != nil && sc.RelevanceRatio > 0 {
		ratio = min(sc.RelevanceRatio, 1)
	}
	relevance := int(float64(p.cfg.MaxExamples) * ratio)
	covered := map[string]bool{}
	n := 0
	for _, i := range cands {
		if n >= relevance {
			break
		}
		if take(i) {
			n++
			covered[p.examples[i].tool] = true
		}
	}
	for _, i := range cands {
		if !used[i] && !covered[p.examples[i].tool] && take(i) {
			covered[p.examples[i].tool] = true
		}
	}
	for _, i := range cands {
		take(i)
	}
}

// topK returns the indices of the k highest scores, best first (ties by
// index).
func topK(scores []float32, k int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(scores[b], scores[a]), cmp.Compare(a, b))
	})
	return idx[:min(k, len(idx))]
}

// injectExamples returns the request with the examples prepended to its
// system message (or a new system message first), the blueprint's way.
func injectExamples(request json.RawMessage, texts []string) (json.RawMessage, error) {
	if len(texts) == 0 {
		return request, nil
	}
	var req map[string]any
	if err := unmarshalNumber(request, &req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	msgs, _ := req["messages"].([]any)
	block := DefaultSystemMessage + "\n\n" + strings.Join(texts, "\n\n")
	done := false
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		if mm == nil || mm["role"] != roleSystem {
			continue
		}
		orig := ""
		switch c := mm["content"].(type) {
		case string:
			orig = c
		case []any:
			b, _ := json.Marshal(c)
			orig = contentText(b)
		}
		mm["content"] = block + "\n\n" + orig
		done = true
		break
	}
	if !done {
		msgs = append([]any{map[string]any{"role": roleSystem, "content": block}}, msgs...)
	}
	req["messages"] = msgs
	out, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return out, nil
}

// queryText is the text a record is compared by in semantic selection.
func queryText(r *Record) string {
	q := strings.TrimSpace(r.UserQuery())
	if q == "" {
		var parts []string
		for _, m := range r.Messages {
			parts = append(parts, contentText(m.Content))
		}
		q = strings.TrimSpace(strings.Join(parts, " "))
	}
	if q == "" {
		q = "(empty)"
	}
	if !utf8.ValidString(q) {
		q = strings.ToValidUTF8(q, " ")
	}
	return q
}

// FewShotRequest returns request with examples prepended to its system
// message as few-shot examples, rendered exactly as the ICL dataset and
// icl-eval render them (the blueprint's format), tool-call arguments
// parsed as with data_split_config.parse_function_arguments. Pre-training
// uses it so that a base has seen such prompts. An example that does not
// validate is an error naming it.
func FewShotRequest(request json.RawMessage, examples []flywheel.LogRecord) (json.RawMessage, error) {
	texts := make([]string, 0, len(examples))
	for i, ex := range examples {
		r, ferr := Validate(ex)
		if ferr != nil {
			return nil, fmt.Errorf("example %d: %w", i, ferr)
		}
		if err := r.parseArguments(); err != nil {
			return nil, fmt.Errorf("example %d: %w", i, err)
		}
		texts = append(texts, exampleText(r))
	}
	return injectExamples(request, texts)
}
