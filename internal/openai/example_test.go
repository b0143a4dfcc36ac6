package openai_test

import (
	"context"
	"fmt"

	"github.com/flywheel-go/flywheel/internal/openai"
	"github.com/flywheel-go/flywheel/internal/openai/openaitest"
)

func ExampleClient_ChatRaw() {
	srv := openaitest.New(openaitest.Options{Chat: func(c openaitest.ChatCall) openaitest.Reply {
		return openaitest.Reply{Message: openai.Message{ToolCalls: []openai.ToolCall{{
			Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"city":"Lima"}`},
		}}}}
	}})
	defer srv.Close()

	client, err := openai.New(openai.Config{BaseURL: srv.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	// A logged request is sent as it is, unknown fields included.
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"Weather in Lima?"}],"nvext":{"priority":1}}`)
	resp, err := client.ChatRaw(context.Background(), body)
	if err != nil {
		fmt.Println(err)
		return
	}
	call := resp.FirstMessage().ToolCalls[0].Function
	fmt.Println(call.Name, call.Arguments, resp.Attempts)
	// Output: get_weather {"city":"Lima"} 1
}

func ExampleClient_EmbedBatches() {
	srv := openaitest.New(openaitest.Options{Embed: func(_, input string) []float32 {
		return []float32{float32(len(input))}
	}})
	defer srv.Close()

	client, err := openai.New(openai.Config{BaseURL: srv.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	vecs, err := client.EmbedBatches(context.Background(), openai.EmbeddingRequest{
		Model: "embedder", Input: []string{"a", "bb", "ccc"}, InputType: "query",
	}, 2)
	fmt.Println(vecs, err, srv.Count("/v1/embeddings"))
	// Output: [[1] [2] [3]] <nil> 2
}
