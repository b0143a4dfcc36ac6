package gguf_test

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/gguf"
)

func sample() *gguf.File {
	return &gguf.File{
		KVs: []gguf.KV{
			{Key: "general.architecture", Value: "llama"},
			{Key: "general.alignment", Value: uint32(32)},
			{Key: "llama.block_count", Value: uint32(2)},
			{Key: "llama.rope.freq_base", Value: float32(10000)},
			{Key: "tokenizer.ggml.tokens", Value: []string{"a", "b", "<|im_end|>"}},
			{Key: "tokenizer.ggml.token_type", Value: []int32{1, 1, 3}},
			{Key: "tokenizer.ggml.add_bos_token", Value: false},
			{Key: "big", Value: uint64(1 << 40)},
			{Key: "neg", Value: int64(-5)},
			{Key: "pi", Value: 3.25},
		},
		Tensors: []gguf.Tensor{
			{Name: "token_embd.weight", Dims: []uint64{3, 2}, Data: []float32{1, 2, 3, 4, 5, 6}},
			{Name: "output_norm.weight", Dims: []uint64{3}, Data: []float32{-1, 0.5, 7}},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()

	f := sample()
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, f.WriteFile(path))

	got, err := gguf.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, f.KVs, got.KVs)
	require.Len(t, got.Tensors, 2)
	for i := range f.Tensors {
		require.Equal(t, f.Tensors[i].Name, got.Tensors[i].Name)
		require.Equal(t, f.Tensors[i].Dims, got.Tensors[i].Dims)
		require.Equal(t, f.Tensors[i].Data, got.Tensors[i].Data)
	}
	require.Equal(t, "llama", got.String("general.architecture"))
	n, ok := got.Uint("llama.block_count")
	require.True(t, ok)
	require.Equal(t, uint64(2), n)
	require.NotNil(t, got.Tensor("output_norm.weight"))
	require.Nil(t, got.Tensor("missing"))
}

func TestWriteAlignsTensorData(t *testing.T) {
	t.Parallel()

	var buf bytes.Buffer
	require.NoError(t, sample().Write(&buf))
	b := buf.Bytes()
	// The second tensor (3 floats) follows the first (6 floats = 24 bytes,
	// padded to 32), and the data region ends with it.
	end := len(b)
	start := end - 12 - 32
	require.Zero(t, start%32, "data region starts aligned")
	require.Equal(t, float32(1), float32frombits(b[start:]))
	require.Equal(t, float32(-1), float32frombits(b[start+32:]))
}

func float32frombits(b []byte) float32 {
	var f float32
	_ = binary.Read(bytes.NewReader(b[:4]), binary.LittleEndian, &f)
	return f
}

func TestWriteRejectsBadTensor(t *testing.T) {
	t.Parallel()

	f := &gguf.File{Tensors: []gguf.Tensor{{Name: "x", Dims: []uint64{4}, Data: []float32{1}}}}
	err := f.Write(&bytes.Buffer{})
	require.ErrorContains(t, err, "tensor x: 1 values for dims [4]")

	f = &gguf.File{KVs: []gguf.KV{{Key: "k", Value: struct{}{}}}}
	require.ErrorContains(t, f.Write(&bytes.Buffer{}), `encode metadata "k"`)
}

func TestReadRejectsCorruptInput(t *testing.T) {
	t.Parallel()

	var buf bytes.Buffer
	require.NoError(t, sample().Write(&buf))
	good := buf.Bytes()

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "Empty", data: nil, want: "read header"},
		{name: "BadMagic", data: append([]byte("GGUX"), good[4:]...), want: "not a valid GGUF file"},
		{name: "Truncated", data: good[:len(good)-5], want: "unexpected EOF"},
		{name: "HugeCount", data: func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint64(b[16:], 1<<62)
			return b
		}(), want: "not a valid GGUF file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := gguf.Read(bytes.NewReader(tt.data))
			require.ErrorContains(t, err, tt.want)
		})
	}
}
