// Package queuefile reads lobbyd's queue file (LOBBYD_CONFIG): for each
// queue, its matchmaking settings, which go to the matchmaker, and in its
// playfab: block its PlayFab Party network settings, which go to the
// allocator. Each component gets only its own part.
//
// Before the playfab: block the network settings were written flat beside
// the matchmaking ones; that form still loads, is reported in
// File.Deprecated, and must not be mixed with a playfab: block in one queue.
package queuefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/lobbyd/lobbyd/partyalloc"
)

// Queue is one queue of the file.
type Queue struct {
	matchmaker.Queue
	// PlayFab is the queue's playfab: block.
	PlayFab partyalloc.Network `json:"playfab"`
}

// File is a loaded, validated queue file.
type File struct {
	Queues []Queue
	// Deprecated lists the queues written in the old flat form, in file
	// order, for one warning at start-up.
	Deprecated []Deprecated
}

// Deprecated is a queue whose PlayFab network settings are written flat
// beside its matchmaking settings instead of in a playfab: block.
type Deprecated struct {
	Queue  string
	Fields []string // as written: maxDevices, directPeerConnectivity, …
}

// Warning is the one start-up warning about every queue in Deprecated:
// which queues and fields, and what to write instead. Empty when none.
func (f File) Warning() string {
	if len(f.Deprecated) == 0 {
		return ""
	}
	var queues []string
	for _, d := range f.Deprecated {
		queues = append(queues, fmt.Sprintf("%q (%s)", d.Queue, strings.Join(d.Fields, ", ")))
	}
	return fmt.Sprintf("queue file: the PlayFab network settings of queue %s are written beside the matchmaking settings, "+
		"a form kept for old files: move them, unchanged, into a playfab: block of the same queue (see README.md, \"Queue file\")",
		strings.Join(queues, ", queue "))
}

// Matchmaking is the matchmaker's part: every queue without its network.
func (f File) Matchmaking() []matchmaker.Queue {
	out := make([]matchmaker.Queue, len(f.Queues))
	for i, q := range f.Queues {
		out[i] = q.Queue
	}
	return out
}

// Networks is the allocator's part: each queue's match size and network,
// as the NetworkConfiguration of its RequestPartyService calls.
func (f File) Networks() map[string]partyalloc.NetworkConfiguration {
	out := make(map[string]partyalloc.NetworkConfiguration, len(f.Queues))
	for _, q := range f.Queues {
		out[q.Name] = q.PlayFab.Configuration(q.MaxUsers)
	}
	return out
}

// Default is the file used when none is given: matchmaker.DefaultQueues'
// one queue of four players, one device each.
func Default() File {
	var f File
	for _, q := range matchmaker.DefaultQueues() {
		f.Queues = append(f.Queues, Queue{Queue: q, PlayFab: partyalloc.Network{
			MaxDevices: q.MaxUsers, MaxDevicesPerUser: 1, MaxUsersPerDevice: 1, MaxEndpointsPerDevice: 1,
		}})
	}
	return f
}

// Load reads the queue file at path, fills defaults and validates it.
// Errors name the file, the queue and the field, and unknown fields are
// errors (a typo must not silently fall back to a default).
func Load(path string) (File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("read queue configuration: %w", err)
	}
	f, err := Parse(raw)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// file is the queue file as written. The decoder's errors name these
// types: "field maxWiat not found in type queuefile.queue".
type file struct {
	Queues []queue `yaml:"queues"`
}

// queue is a queue as written: the matchmaking settings, the playfab:
// block, and the old flat network fields.
type queue struct {
	matchmaker.Queue `yaml:",inline"`
	PlayFab          *partyalloc.Network `yaml:"playfab"`
	Flat             flatNetwork         `yaml:",inline"`
}

// flatNetwork is partyalloc.Network written beside the matchmaking
// settings, the form before the playfab: block. Pointers tell which fields
// were written.
type flatNetwork struct {
	MaxDevices             *int    `yaml:"maxDevices"`
	MaxDevicesPerUser      *int    `yaml:"maxDevicesPerUser"`
	MaxUsersPerDevice      *int    `yaml:"maxUsersPerDevice"`
	MaxEndpointsPerDevice  *int    `yaml:"maxEndpointsPerDevice"`
	DirectPeerConnectivity *string `yaml:"directPeerConnectivity"`
}

// fields lists the fields written, by their YAML names.
func (n flatNetwork) fields() []string {
	var out []string
	v, t := reflect.ValueOf(n), reflect.TypeOf(n)
	for i := range t.NumField() {
		if !v.Field(i).IsNil() {
			out = append(out, t.Field(i).Tag.Get("yaml"))
		}
	}
	return out
}

// network is the settings written; fields not written are zero.
func (n flatNetwork) network() partyalloc.Network {
	var out partyalloc.Network
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	set(&out.MaxDevices, n.MaxDevices)
	set(&out.MaxDevicesPerUser, n.MaxDevicesPerUser)
	set(&out.MaxUsersPerDevice, n.MaxUsersPerDevice)
	set(&out.MaxEndpointsPerDevice, n.MaxEndpointsPerDevice)
	if n.DirectPeerConnectivity != nil {
		out.DirectPeerConnectivity = *n.DirectPeerConnectivity
	}
	return out
}

// keyOf is the key written before value on a YAML line: "ticketTimeout"
// in "    ticketTimeout: soon", "after" in "- {after: soon, rule: any}"
// (empty when the line does not say).
func keyOf(line, value string) string {
	m := regexp.MustCompile(`([A-Za-z0-9_]+)\s*:\s*["']?` + regexp.QuoteMeta(value)).FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	return m[1]
}

// Parse is Load on the file's contents.
func Parse(raw []byte) (File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var doc file
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return File{}, errors.New("the file is empty: it needs a queues list")
		}
		var de *matchmaker.DurationError
		if errors.As(err, &de) {
			lines := strings.Split(string(raw), "\n")
			if de.Line >= 1 && de.Line <= len(lines) {
				de.Field = keyOf(lines[de.Line-1], de.Value)
			}
		}
		return File{}, err
	}
	var f File
	var errs []error
	for i, written := range doc.Queues {
		q := Queue{Queue: written.Queue}
		q.ApplyDefaults()
		queueErrs := []error{q.Validate()}
		flat := written.Flat.fields()
		switch {
		case written.PlayFab != nil && len(flat) > 0:
			queueErrs = append(queueErrs, fmt.Errorf("queue %q: %s written beside a playfab: block: keep them in the block only",
				q.Name, strings.Join(flat, ", ")))
		case written.PlayFab != nil:
			q.PlayFab = *written.PlayFab
			if err := q.PlayFab.Validate(q.MaxUsers); err != nil {
				queueErrs = append(queueErrs, fmt.Errorf("queue %q: playfab: %w", q.Name, err))
			}
		default:
			q.PlayFab = written.Flat.network()
			if len(flat) > 0 {
				f.Deprecated = append(f.Deprecated, Deprecated{Queue: q.Name, Fields: flat})
			}
			if err := q.PlayFab.Validate(q.MaxUsers); err != nil {
				queueErrs = append(queueErrs, fmt.Errorf("queue %q: %w", q.Name, err))
			}
		}
		if err := errors.Join(queueErrs...); err != nil {
			errs = append(errs, fmt.Errorf("queues[%d]: %w", i, err))
		}
		f.Queues = append(f.Queues, q)
	}
	if err := errors.Join(errs...); err != nil {
		return File{}, err
	}
	if err := matchmaker.ValidateQueues(f.Matchmaking()); err != nil {
		return File{}, err
	}
	return f, nil
}
