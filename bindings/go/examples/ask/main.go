// Command ask answers a question about a video greedily and prints only the answer:
//
//	go run ./examples/ask --model DIR --video FILE --frames 8 \
//	    --prompt "Why is this video funny?" --max-tokens 24
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	llavanext "github.com/libllavanext/llavanext-go"
)

func main() {
	model := flag.String("model", "", "checkpoint directory")
	video := flag.String("video", "", "video file")
	frames := flag.Int("frames", 8, "frames sampled uniformly")
	prompt := flag.String("prompt", "", "the question")
	maxTokens := flag.Int("max-tokens", 0, "most tokens to generate (0: the model's generation config)")
	flag.Parse()
	if *model == "" || *video == "" || *prompt == "" {
		fmt.Fprintln(os.Stderr, "usage: ask --model DIR --video FILE [--frames N] --prompt TEXT [--max-tokens N]")
		os.Exit(2)
	}
	if err := run(*model, *video, *frames, *prompt, int32(*maxTokens)); err != nil {
		fmt.Fprintln(os.Stderr, "ask:", err)
		os.Exit(1)
	}
}

func run(modelDir, video string, frames int, question string, maxTokens int32) error {
	m, err := llavanext.LoadModel(modelDir, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	sampler, err := llavanext.OpenFrameSampler(video, nil)
	if err != nil {
		return err
	}
	defer sampler.Close()
	picked, err := sampler.Uniform(frames)
	if err != nil {
		return err
	}
	defer picked.Close()
	encoder, err := llavanext.NewVisionEncoder(m, nil)
	if err != nil {
		return err
	}
	defer encoder.Close()
	features, err := encoder.EncodeVideo(picked)
	if err != nil {
		return err
	}
	defer features.Close()
	pooler, err := llavanext.NewPooler(m, nil)
	if err != nil {
		return err
	}
	defer pooler.Close()
	embeddings, err := pooler.Apply(features)
	if err != nil {
		return err
	}
	defer embeddings.Close()

	messages, _ := json.Marshal([]any{map[string]any{"role": "user", "content": []any{
		map[string]any{"type": "video"},
		map[string]any{"type": "text", "text": question},
	}}})
	prompt, err := m.RenderChat(string(messages), true)
	if err != nil {
		return err
	}
	g, err := llavanext.NewGenerator(m, llavanext.Greedy(maxTokens))
	if err != nil {
		return err
	}
	defer g.Close()
	if err := g.AppendPrompt(prompt, embeddings); err != nil {
		return err
	}
	for {
		tok, err := g.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		os.Stdout.WriteString(tok.Piece)
	}
	os.Stdout.WriteString("\n")
	return nil
}
