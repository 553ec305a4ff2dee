package elemesandbox

import (
	"encoding/json"
	"net/http"
)

// Handler serves the API and the admin routes:
//
//	POST   /api/v1 (and /api/v1/)      the OpenAPI gateway (getPushFailMsg, confirmPullMsg)
//	POST   /sandbox/held               hold failed pushes: {"app_id": "…", "messages": [push bodies or messages]}
//	GET    /sandbox/held?app=APPID     the messages still held (not confirmed)
//	GET    /sandbox/confirms           every confirmPullMsg that reached the sandbox, with its ids and outcome
//	GET    /sandbox/calls              the call log
//	GET    /sandbox/stats              counters: calls by outcome, held, pulled, confirmed
//	GET    /sandbox/faults             faults still armed
//	POST   /sandbox/faults             arm a fault (JSON Fault)
//	DELETE /sandbox/faults             clear every fault
//	POST   /sandbox/apps               add or replace an app (JSON App)
//	POST   /sandbox/reset              forget held messages, confirms, calls, counters and faults
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1", s.ServeAPI)
	mux.HandleFunc("/api/v1/", s.ServeAPI)
	mux.HandleFunc("POST /sandbox/held", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			AppID    string            `json:"app_id"`
			Messages []json.RawMessage `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		ids, err := s.Hold(in.AppID, in.Messages...)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"msg_ids": ids})
	})
	mux.HandleFunc("GET /sandbox/held", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.HeldMessages(r.URL.Query().Get("app")))
	})
	mux.HandleFunc("GET /sandbox/confirms", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Confirms())
	})
	mux.HandleFunc("GET /sandbox/calls", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Calls())
	})
	mux.HandleFunc("GET /sandbox/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /sandbox/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		out := make([]Fault, 0, len(s.faults))
		for _, f := range s.faults {
			out = append(out, *f)
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := s.Inject(f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusCreated, f)
	})
	mux.HandleFunc("DELETE /sandbox/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sandbox/apps", func(w http.ResponseWriter, r *http.Request) {
		var a App
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil || a.AppID == "" || a.AppKey == "" || a.Secret == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {app_id, app_key, secret}"})
			return
		}
		s.AddApp(a)
		writeJSON(w, http.StatusCreated, map[string]string{"app_id": a.AppID})
	})
	mux.HandleFunc("POST /sandbox/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
