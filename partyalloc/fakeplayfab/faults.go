package fakeplayfab

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// faultsJSON is the wire form of Faults at /_fake/faults. Pointers tell
// which fields a POST sets.
type faultsJSON struct {
	Latency          *jsonDuration `json:"latency,omitempty"`
	Jitter           *jsonDuration `json:"jitter,omitempty"`
	ErrorRate        *float64      `json:"errorRate,omitempty"`
	ThrottleRate     *float64      `json:"throttleRate,omitempty"`
	RetryAfter       *jsonDuration `json:"retryAfter,omitempty"`
	DropResponseRate *float64      `json:"dropResponseRate,omitempty"`
}

// MarshalJSON writes every field, durations as Go duration strings
// ("50ms") and rates as numbers.
func (f Faults) MarshalJSON() ([]byte, error) {
	latency, jitter, retryAfter := jsonDuration(f.Latency), jsonDuration(f.Jitter), jsonDuration(f.RetryAfter)
	return json.Marshal(faultsJSON{
		Latency:          &latency,
		Jitter:           &jitter,
		ErrorRate:        &f.ErrorRate,
		ThrottleRate:     &f.ThrottleRate,
		RetryAfter:       &retryAfter,
		DropResponseRate: &f.DropResponseRate,
	})
}

// UnmarshalJSON sets the fields present in data and leaves the others as
// they were, so that decoding onto the current faults updates them.
// Durations are Go duration strings or numbers of seconds.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var in faultsJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	if in.Latency != nil {
		f.Latency = time.Duration(*in.Latency)
	}
	if in.Jitter != nil {
		f.Jitter = time.Duration(*in.Jitter)
	}
	if in.ErrorRate != nil {
		f.ErrorRate = *in.ErrorRate
	}
	if in.ThrottleRate != nil {
		f.ThrottleRate = *in.ThrottleRate
	}
	if in.RetryAfter != nil {
		f.RetryAfter = time.Duration(*in.RetryAfter)
	}
	if in.DropResponseRate != nil {
		f.DropResponseRate = *in.DropResponseRate
	}
	return nil
}

// validate returns the field errors of f, keyed by JSON field name.
func (f Faults) validate() map[string][]string {
	v := validator{}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"latency", f.Latency}, {"jitter", f.Jitter}, {"retryAfter", f.RetryAfter}} {
		if d.value < 0 {
			v.add(d.name, "The field "+d.name+" must not be negative.")
		}
	}
	for _, r := range []struct {
		name  string
		value float64
	}{{"errorRate", f.ErrorRate}, {"throttleRate", f.ThrottleRate}, {"dropResponseRate", f.DropResponseRate}} {
		if !(r.value >= 0 && r.value <= 1) {
			v.add(r.name, "The field "+r.name+" must be between 0 and 1.")
		}
	}
	return v.details
}

// String describes f for logs.
func (f Faults) String() string {
	return fmt.Sprintf("latency=%v jitter=%v errorRate=%g throttleRate=%g retryAfter=%v dropResponseRate=%g",
		f.Latency, f.Jitter, f.ErrorRate, f.ThrottleRate, f.RetryAfter, f.DropResponseRate)
}

// jsonDuration is a time.Duration written as "50ms" and read from such a
// string or from a number of seconds.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		parsed, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = jsonDuration(parsed)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(data, &secs); err != nil {
		return errors.New(`want a duration such as "50ms" or a number of seconds`)
	}
	*d = jsonDuration(secs * float64(time.Second))
	return nil
}
