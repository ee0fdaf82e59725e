package fakeplayfab

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PlayFab error names and codes the fake answers with.
const (
	errInvalidParams          = "InvalidParams"
	errInvalidRequest         = "InvalidRequest"
	errNotAuthenticated       = "NotAuthenticated"
	errInternalServerError    = "InternalServerError"
	errServiceUnavailable     = "ServiceUnavailable"
	errInvalidAPIEndpoint     = "InvalidAPIEndpoint"
	errInvalidContentType     = "InvalidContentType"
	errRateLimitExceeded      = "APIClientRequestRateLimitExceeded"
	errEntityTokenMissing     = "EntityTokenMissing"
	errEntityTokenInvalid     = "EntityTokenInvalid"
	errEntityTokenExpired     = "EntityTokenExpired"
	errInvalidEntityType      = "InvalidEntityType"
	errBodyTooLarge           = "BodyTooLarge"
	codeInvalidParams         = 1000
	codeInvalidRequest        = 1071
	codeNotAuthenticated      = 1074
	codeInternalServerError   = 1110
	codeServiceUnavailable    = 1123
	codeInvalidAPIEndpoint    = 1131
	codeInvalidContentType    = 1144
	codeRateLimitExceeded     = 1199
	codeEntityTokenMissing    = 1334
	codeEntityTokenInvalid    = 1335
	codeEntityTokenExpired    = 1336
	codeInvalidEntityType     = 1373
	codeBodyTooLarge          = 1068
	invalidParamsMessage      = "Invalid input parameters"
	maxRequestBodyBytes       = 1 << 20
	entityTypeTitle           = "title"
	entityTypeGameServer      = "game_server"
	headerSecretKey           = "X-SecretKey"
	headerEntityToken         = "X-EntityToken"
	headerRetryAfter          = "Retry-After"
	defaultThrottleRetryAfter = time.Second
)

// apiError is a PlayFab failure envelope.
type apiError struct {
	Code              int                 `json:"code"`
	Status            string              `json:"status"`
	Error             string              `json:"error"`
	ErrorCode         int                 `json:"errorCode"`
	ErrorMessage      string              `json:"errorMessage"`
	ErrorDetails      map[string][]string `json:"errorDetails,omitempty"`
	RetryAfterSeconds *float64            `json:"retryAfterSeconds,omitempty"`
}

// newAPIError builds a failure envelope for HTTP status.
func newAPIError(status int, name string, code int, message string) *apiError {
	return &apiError{
		Code:         status,
		Status:       statusName(status),
		Error:        name,
		ErrorCode:    code,
		ErrorMessage: message,
	}
}

// statusName spells an HTTP status the way PlayFab's "status" does, which
// is .NET's HttpStatusCode name: "BadRequest", "TooManyRequests".
func statusName(status int) string {
	return strings.ReplaceAll(http.StatusText(status), " ", "")
}

// invalidParams is the 400 InvalidParams envelope listing field errors.
func invalidParams(details map[string][]string) *apiError {
	e := newAPIError(http.StatusBadRequest, errInvalidParams, codeInvalidParams, invalidParamsMessage)
	e.ErrorDetails = details
	return e
}

// throttled is the 429 envelope asking the client to wait retryAfter.
func throttled(retryAfter time.Duration) *apiError {
	e := newAPIError(http.StatusTooManyRequests, errRateLimitExceeded, codeRateLimitExceeded,
		"The rate of requests exceeded the limit; retry after the given time")
	secs := retryAfter.Seconds()
	e.RetryAfterSeconds = &secs
	return e
}

// writeError sends a failure envelope with its HTTP status.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfterSeconds != nil {
		w.Header().Set(headerRetryAfter, strconv.Itoa(max(1, int(math.Ceil(*e.RetryAfterSeconds)))))
	}
	writeJSON(w, e.Code, e)
}

// writeData sends a success envelope.
func writeData(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, struct {
		Code   int    `json:"code"`
		Status string `json:"status"`
		Data   any    `json:"data"`
	}{http.StatusOK, "OK", data})
}

// writeJSON sends v as the reply body. ServeHTTP has set the content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only the fake's own types are marshalled; this is a bug.
		panic("fakeplayfab: marshal reply: " + err.Error())
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// allow answers any method but method with 405 in the PlayFab envelope.
func allow(method string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, newAPIError(http.StatusMethodNotAllowed, errInvalidRequest, codeInvalidRequest,
				"Method "+r.Method+" is not allowed; use "+method))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handleNotFound answers paths that are no API with 404 InvalidAPIEndpoint.
func handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newAPIError(http.StatusNotFound, errInvalidAPIEndpoint, codeInvalidAPIEndpoint,
			"No API at "+strconv.Quote(r.URL.Path)))
	})
}
