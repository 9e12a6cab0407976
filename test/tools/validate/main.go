// validate: offline checks for the deployment files, used by test/integration/deploy.test.ts.
//
//	validate k8s FILE|-      every document must decode strictly into its k8s.io/api type
//	                         (unknown fields, wrong types and duplicate keys are errors); kinds
//	                         outside the built-in API (CRDs) are listed as skipped
//	validate compose FILE    the compose file through compose-go's loader, which validates it
//	                         against the compose specification's JSON schema and checks references
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: validate k8s FILE|- | validate compose FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "k8s":
		err = validateK8s(os.Args[2])
	case "compose":
		err = validateCompose(os.Args[2])
	default:
		err = fmt.Errorf("unknown check %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid:", err)
		os.Exit(1)
	}
}

func open(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(path)
}

func validateK8s(path string) error {
	in, err := open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var problems []error
	for index := 0; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", index, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			problems = append(problems, fmt.Errorf("document %d: %w", index, err))
			continue
		}
		id := fmt.Sprintf("%s %s/%s", meta.APIVersion, meta.Kind, meta.Metadata.Name)
		gvk := schema.FromAPIVersionAndKind(meta.APIVersion, meta.Kind)
		if meta.Kind == "" || meta.Metadata.Name == "" {
			problems = append(problems, fmt.Errorf("document %d (%s): kind and metadata.name are required", index, id))
			continue
		}
		if !scheme.Scheme.Recognizes(gvk) {
			fmt.Printf("skipped %s (not a built-in kind)\n", id)
			continue
		}
		// Strict decoding reports unknown fields and duplicate keys (runtime.IsStrictDecodingError)
		// as well as values of the wrong type.
		if _, _, err := decoder.Decode(doc, nil, nil); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", id, err))
			continue
		}
		fmt.Printf("ok %s\n", id)
	}
	return errors.Join(problems...)
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func validateCompose(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	content, err := os.ReadFile(abs)
	if err != nil {
		return err
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: content}},
		Environment: types.NewMapping(os.Environ()),
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("check", true)
		o.ResolvePaths = true
	})
	if err != nil {
		return err
	}
	for _, name := range project.ServiceNames() {
		fmt.Printf("ok service %s\n", name)
	}
	return nil
}
