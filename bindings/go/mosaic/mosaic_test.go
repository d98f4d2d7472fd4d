package mosaic

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// The error of a missing model file is the C call's own status and message.
func TestMissingFileIsTheCError(t *testing.T) {
	const path = "/nonexistent/model.safetensors"
	var raw unsafe.Pointer
	var want int32
	var wantMsg string
	_ = call(func() int32 {
		want = MscModelLoad(path, nil, unsafe.Pointer(&raw))
		wantMsg = MscLastError()
		return MSC_OK
	})
	if want >= 0 || raw != nil {
		t.Fatalf("the C call returned %d", want)
	}
	_, err := LoadModel(path, nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error", err)
	}
	if e.Status != want || e.Message != wantMsg || !strings.Contains(e.Error(), path) {
		t.Fatalf("got %d %q, want %d %q", e.Status, e.Message, want, wantMsg)
	}
}

func TestOptionsRoundTripAndCloseTwice(t *testing.T) {
	o, err := NewOptions()
	if err != nil {
		t.Fatal(err)
	}
	if err := o.SetInt("seed", 77); err != nil {
		t.Fatal(err)
	}
	if v, err := o.GetInt("seed"); err != nil || v != 77 {
		t.Fatalf("seed = %d, %v", v, err)
	}
	if err := o.SetFloat("optim.lr", 0.125); err != nil {
		t.Fatal(err)
	}
	if v, err := o.GetFloat("optim.lr"); err != nil || v != 0.125 {
		t.Fatalf("optim.lr = %g, %v", v, err)
	}
	long := strings.Repeat("x", 300) // longer than the first buffer
	if err := o.SetString("modality.0.band_names", long); err != nil {
		t.Fatal(err)
	}
	if v, err := o.GetString("modality.0.band_names"); err != nil || v != long {
		t.Fatalf("band_names: %d bytes, %v", len(v), err)
	}
	if err := o.SetInt("no.such.key", 1); err == nil {
		t.Fatal("an unknown key was accepted")
	} else if e := err.(*Error); e.Status != MscOptionsSetInt(o.Raw(), "no.such.key", 1) {
		t.Fatalf("status %d differs from the C call's", e.Status)
	}
	o.Close()
	o.Close() // safe
	if o.Raw() != nil {
		t.Fatal("Close left the handle")
	}
}

func TestEmbedTwoIdenticalSamples(t *testing.T) {
	o, _ := NewOptions()
	defer o.Close()
	o.SetString("modality.0.encoder", "tiny")
	o.SetString("modality.1.encoder", "tiny")
	m, err := NewModel(o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, _ := NewBatch()
	defer b.Close()
	if err := b.SetModality("s1", make([]float32, 3), 1, 2, 2, 2); err == nil {
		t.Fatal("a short array was accepted")
	}
	if err := b.SetModality("s1", nil, 0, 2, 2, 2); err == nil {
		t.Fatal("an empty array was accepted")
	} else if e := err.(*Error); e.Status != MscBatchSetModality(b.Raw(), "s1", nil, 0, 2, 2, 2) {
		t.Fatalf("an empty array: %v, not the C call's status", err)
	}
	s1 := make([]float32, 2*2*120*120)
	s2 := make([]float32, 2*12*120*120)
	for i := range s2 {
		s2[i] = float32(i % 3000)
	}
	copy(s2[12*120*120:], s2[:12*120*120])
	if err := b.SetModality("s1", s1, 2, 2, 120, 120); err != nil {
		t.Fatal(err)
	}
	if err := b.SetModality("s2", s2, 2, 12, 120, 120); err != nil {
		t.Fatal(err)
	}
	h, err := m.Embed(b, MSC_EMBED_FUSED)
	if err != nil {
		t.Fatal(err)
	}
	d := len(h) / 2
	for i := 0; i < d; i++ {
		if h[i] != h[d+i] {
			t.Fatalf("rows differ at %d", i)
		}
	}

	// Predict = msc_predict itself, into a buffer sized from the C class count.
	c := MscModelClassCount(m.Raw())
	if c <= 0 {
		t.Fatalf("class count %d", c)
	}
	want := make([]float32, 2*c)
	if st := MscPredict(m.Raw(), b.Raw(), &want[0], uint64(len(want))); st != MSC_OK {
		t.Fatalf("msc_predict: %d", st)
	}
	p, err := m.Predict(b)
	if err != nil || len(p) != len(want) {
		t.Fatalf("Predict: %d values, %v", len(p), err)
	}
	for i := range want {
		if p[i] != want[i] {
			t.Fatalf("Predict differs from msc_predict at %d: %g, %g", i, p[i], want[i])
		}
	}
	empty, _ := NewBatch()
	defer empty.Close()
	_, err = m.Predict(empty)
	if e, ok := err.(*Error); !ok || e.Status != MscPredict(m.Raw(), empty.Raw(), nil, 0) {
		t.Fatalf("Predict of an empty batch: %v", err)
	}
}

// The dataset's size and a filled batch are what the C calls give; no indices is the C
// call's own error.
func TestDatasetFillBatch(t *testing.T) {
	const data = "../../../examples/data/bigearthnet-v2" // (go test runs in the package directory)
	if _, err := OpenDataset("/nonexistent", "bigearthnet-v2", nil); err == nil {
		t.Fatal("a missing dataset opened")
	}
	ds, err := OpenDataset(data, "bigearthnet-v2", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	n := ds.Len()
	if n <= 0 || int64(n) != MscDatasetSize(ds.Raw()) {
		t.Fatalf("Len %d, msc_dataset_size %d", n, MscDatasetSize(ds.Raw()))
	}
	b, _ := NewBatch()
	defer b.Close()
	err = ds.FillBatch(nil, b)
	if e, ok := err.(*Error); !ok || e.Status != MscDatasetFillBatch(ds.Raw(), nil, 0, b.Raw()) {
		t.Fatalf("FillBatch(nil): %v", err)
	}
	idx := []int64{int64(n - 1), 0}
	if err := ds.FillBatch(idx, b); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 2 || int64(b.Len()) != MscBatchSize(b.Raw()) {
		t.Fatalf("batch of %d samples", b.Len())
	}
	ds.Close()
	ds.Close()
}
