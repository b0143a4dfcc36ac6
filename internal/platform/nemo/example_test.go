package nemo_test

import (
	"context"
	"fmt"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/nemo"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
)

// ExamplePlatform_Deploy deploys a candidate on the fake and polls it the
// way the engine does: short calls, never a blocking wait.
func ExamplePlatform_Deploy() {
	fake := nemotest.New(nemotest.Options{})
	defer fake.Close()
	p, err := nemo.New(nemo.Config{
		NeMo:      nemo.Service{BaseURL: fake.URL},
		NIM:       nemo.Service{BaseURL: fake.NIMURL},
		DataStore: nemo.Service{BaseURL: fake.URL},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := p.Deploy(ctx, flywheel.DeployRequest{Key: "run-1/nim-1", Model: flywheel.NIMConfig{
		ModelName: "meta/llama-3.2-1b-instruct", Tag: "1.8.3", GPUs: 1,
	}})
	if err != nil {
		panic(err)
	}
	for d.Status != flywheel.DeploymentReady && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if d, err = p.Deployment(ctx, d.ID); err != nil {
			panic(err)
		}
	}
	fmt.Println(d.Status, d.Endpoint.Model)
	fmt.Println(p.Undeploy(ctx, d.ID), fake.Live().Empty())
	// Output:
	// ready meta/llama-3.2-1b-instruct
	// <nil> true
}
