// Package mosaic is the Go binding of libmosaic (docs/bindings.md, "Go").
//
// zz_raw.go, generated from include/mosaic/mosaic.h, has every function of the C API
// (MscModelLoad, MscEmbed, ...) and every constant (MSC_OK, MSC_EMBED_FUSED, ...). This
// file wraps the common path in Go types: handles with Close (and a finalizer as a
// backstop), errors as *Error carrying the C status and the library's message, and
// slices in and out. Raw() gives a handle's C pointer for the raw functions.
package mosaic

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Error is a failed call: the C status (a negative MSC_E_* value) and the message the
// library left for the calling thread (msc_last_error).
type Error struct {
	Status  int32
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", MscStatusString(e.Status), e.Status, e.Message)
}

// check turns a status into an error. The message is read on the same OS thread as the
// call (the library keeps it per thread): callers lock the goroutine to its thread.
func check(status int32) error {
	if status == MSC_OK {
		return nil
	}
	return &Error{Status: status, Message: MscLastError()}
}

// call runs f with the goroutine locked to its OS thread, so that msc_last_error
// belongs to the same thread as the call. keep are the Go values whose handles f passes
// to C: they stay reachable until f has returned, since otherwise a value whose last
// use was reading its raw pointer could be finalized, and its handle freed, while the
// C function still works on it.
func call(f func() int32, keep ...interface{}) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := check(f())
	runtime.KeepAlive(keep)
	return err
}

// Version is the library's version, "MAJOR.MINOR.PATCH".
func Version() string { return MscVersionString() }

// handle is the common part of every handle type.
type handle struct {
	raw  unsafe.Pointer
	free func(unsafe.Pointer)
}

func (h *handle) close() {
	if h.raw != nil {
		h.free(h.raw)
		h.raw = nil
	}
}

// Options is a set of options (msc_options).
type Options struct{ handle }

// Model is a model (msc_model).
type Model struct{ handle }

// Batch is a batch of samples (msc_batch).
type Batch struct{ handle }

// Dataset is a dataset on disk (msc_dataset).
type Dataset struct{ handle }

// Close frees the options; calling it again does nothing.
func (o *Options) Close() { o.close() }

// Close frees the model; calling it again does nothing.
func (m *Model) Close() { m.close() }

// Close frees the batch; calling it again does nothing.
func (b *Batch) Close() { b.close() }

// Close frees the dataset; calling it again does nothing.
func (d *Dataset) Close() { d.close() }

// Raw is the C handle (msc_options *), still owned by o.
func (o *Options) Raw() unsafe.Pointer { return o.raw }

// Raw is the C handle (msc_model *), still owned by m.
func (m *Model) Raw() unsafe.Pointer { return m.raw }

// Raw is the C handle (msc_batch *), still owned by b.
func (b *Batch) Raw() unsafe.Pointer { return b.raw }

// Raw is the C handle (msc_dataset *), still owned by d.
func (d *Dataset) Raw() unsafe.Pointer { return d.raw }

// NewOptions returns options with every key at its default.
func NewOptions() (*Options, error) {
	var raw unsafe.Pointer
	if err := call(func() int32 { return MscOptionsCreate(unsafe.Pointer(&raw)) }); err != nil {
		return nil, err
	}
	o := &Options{handle{raw, MscOptionsFree}}
	runtime.SetFinalizer(o, (*Options).Close)
	return o, nil
}

// SetInt sets an integer key.
func (o *Options) SetInt(key string, v int64) error {
	return call(func() int32 { return MscOptionsSetInt(o.raw, key, v) }, o)
}

// SetFloat sets a floating-point key.
func (o *Options) SetFloat(key string, v float64) error {
	return call(func() int32 { return MscOptionsSetFloat(o.raw, key, v) }, o)
}

// SetString sets a string key.
func (o *Options) SetString(key, v string) error {
	return call(func() int32 { return MscOptionsSetString(o.raw, key, v) }, o)
}

// GetInt reads an integer key.
func (o *Options) GetInt(key string) (int64, error) {
	var v int64
	err := call(func() int32 { return MscOptionsGetInt(o.raw, key, &v) }, o)
	return v, err
}

// GetFloat reads a floating-point key.
func (o *Options) GetFloat(key string) (float64, error) {
	var v float64
	err := call(func() int32 { return MscOptionsGetFloat(o.raw, key, &v) }, o)
	return v, err
}

// GetString reads a string key of any length.
func (o *Options) GetString(key string) (string, error) {
	var n uint64
	buf := make([]byte, 64)
	var s string
	err := call(func() int32 {
		st := MscOptionsGetString(o.raw, key, unsafe.Pointer(&buf[0]), uint64(len(buf)), &n)
		if st == MSC_E_BUFFER_TOO_SMALL { // n is the length: once more with room for it
			buf = make([]byte, n+1)
			st = MscOptionsGetString(o.raw, key, unsafe.Pointer(&buf[0]), uint64(len(buf)), &n)
		}
		if st == MSC_OK {
			s = string(buf[:n])
		}
		return st
	}, o)
	return s, err
}

func newModel(raw unsafe.Pointer) *Model {
	m := &Model{handle{raw, MscModelFree}}
	runtime.SetFinalizer(m, (*Model).Close)
	return m
}

// NewModel creates a model with freshly initialised weights.
func NewModel(o *Options) (*Model, error) {
	var raw unsafe.Pointer
	if err := call(func() int32 { return MscModelCreate(o.raw, unsafe.Pointer(&raw)) }, o); err != nil {
		return nil, err
	}
	return newModel(raw), nil
}

// LoadModel loads a model file; runtime may be nil.
func LoadModel(path string, runtimeOpts *Options) (*Model, error) {
	var raw unsafe.Pointer
	var rt unsafe.Pointer
	if runtimeOpts != nil {
		rt = runtimeOpts.raw
	}
	if err := call(func() int32 { return MscModelLoad(path, rt, unsafe.Pointer(&raw)) }, runtimeOpts); err != nil {
		return nil, err
	}
	return newModel(raw), nil
}

// Save writes the model file atomically.
func (m *Model) Save(path string) error {
	return call(func() int32 { return MscModelSave(m.raw, path) }, m)
}

// EmbeddingSize is the number of floats of one sample's embedding of kind which.
func (m *Model) EmbeddingSize(which int32) (int, error) {
	var n int64
	err := call(func() int32 { return MscModelEmbeddingSize(m.raw, which, &n) }, m)
	return int(n), err
}

// Embed returns the embeddings of the batch's samples, N × EmbeddingSize(which).
func (m *Model) Embed(b *Batch, which int32) ([]float32, error) {
	d, err := m.EmbeddingSize(which)
	if err != nil {
		return nil, err
	}
	out := make([]float32, b.Len()*d)
	var p *float32 // (NULL for an empty batch: the library says what is wrong)
	if len(out) > 0 {
		p = &out[0]
	}
	err = call(func() int32 { return MscEmbed(m.raw, b.raw, which, p, uint64(len(out))) }, m, b)
	return out, err
}

// ClassCount is the number of classes C of the classifier.
func (m *Model) ClassCount() int {
	n := int(MscModelClassCount(m.raw))
	runtime.KeepAlive(m)
	return n
}

// Predict returns the per-class probabilities of the batch's samples, N × ClassCount()
// row-major (sigmoids for a multi-label model, a softmax per row otherwise).
func (m *Model) Predict(b *Batch) ([]float32, error) {
	out := make([]float32, b.Len()*m.ClassCount())
	var p *float32 // (NULL for an empty batch: the library says what is wrong)
	if len(out) > 0 {
		p = &out[0]
	}
	err := call(func() int32 { return MscPredict(m.raw, b.raw, p, uint64(len(out))) }, m, b)
	return out, err
}

// NewBatch returns an empty batch.
func NewBatch() (*Batch, error) {
	var raw unsafe.Pointer
	if err := call(func() int32 { return MscBatchCreate(unsafe.Pointer(&raw)) }); err != nil {
		return nil, err
	}
	b := &Batch{handle{raw, MscBatchFree}}
	runtime.SetFinalizer(b, (*Batch).Close)
	return b, nil
}

// Len is the number of samples in the batch.
func (b *Batch) Len() int {
	n := int(MscBatchSize(b.raw))
	runtime.KeepAlive(b)
	return n
}

// SetModality sets a modality's N × C × H × W raw pixel values (copied).
func (b *Batch) SetModality(name string, nchw []float32, n, c, h, w int64) error {
	if int64(len(nchw)) != n*c*h*w {
		return &Error{Status: MSC_E_SHAPE,
			Message: fmt.Sprintf("%d floats for %dx%dx%dx%d", len(nchw), n, c, h, w)}
	}
	var p *float32 // (NULL for no pixels: the library says what is wrong)
	if len(nchw) > 0 {
		p = &nchw[0]
	}
	return call(func() int32 { return MscBatchSetModality(b.raw, name, p, n, c, h, w) }, b)
}

// OpenDataset opens the dataset at root in format (e.g. "bigearthnet-v2"); o may be nil.
func OpenDataset(root, format string, o *Options) (*Dataset, error) {
	var raw, opts unsafe.Pointer
	if o != nil {
		opts = o.raw
	}
	if err := call(func() int32 { return MscDatasetOpen(root, format, opts, unsafe.Pointer(&raw)) }, o); err != nil {
		return nil, err
	}
	d := &Dataset{handle{raw, MscDatasetFree}}
	runtime.SetFinalizer(d, (*Dataset).Close)
	return d, nil
}

// Len is the number of samples.
func (d *Dataset) Len() int {
	n := int(MscDatasetSize(d.raw))
	runtime.KeepAlive(d)
	return n
}

// FillBatch reads the samples at indices into b.
func (d *Dataset) FillBatch(indices []int64, b *Batch) error {
	var p *int64 // (NULL for no indices: the library says what is wrong)
	if len(indices) > 0 {
		p = &indices[0]
	}
	return call(func() int32 { return MscDatasetFillBatch(d.raw, p, int64(len(indices)), b.raw) }, d, b)
}
