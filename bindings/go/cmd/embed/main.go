// embed MODEL DATA OUT: the fused embeddings of every sample of the BigEarthNet v2
// dataset at DATA through the Go binding, written to OUT as raw little-endian float32 —
// what tests/bindings/embed_ref.c does in C (the parity test compares them).
package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"libmosaic.org/mosaic/mosaic"
)

func run(modelPath, data, out string) (int, error) {
	m, err := mosaic.LoadModel(modelPath, nil)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	ds, err := mosaic.OpenDataset(data, "bigearthnet-v2", nil)
	if err != nil {
		return 0, err
	}
	defer ds.Close()
	idx := make([]int64, ds.Len())
	for i := range idx {
		idx[i] = int64(i)
	}
	b, err := mosaic.NewBatch()
	if err != nil {
		return 0, err
	}
	defer b.Close()
	if err := ds.FillBatch(idx, b); err != nil {
		return 0, err
	}
	h, err := m.Embed(b, mosaic.MSC_EMBED_FUSED)
	if err != nil {
		return 0, err
	}
	bytes := make([]byte, 4*len(h))
	for i, v := range h {
		binary.LittleEndian.PutUint32(bytes[4*i:], math.Float32bits(v))
	}
	return len(idx), os.WriteFile(out, bytes, 0o644)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: embed MODEL DATA OUT")
		os.Exit(2)
	}
	n, err := run(os.Args[1], os.Args[2], os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
	fmt.Printf("embed (Go, libmosaic %s): %d samples -> %s\n", mosaic.Version(), n, os.Args[3])
}
