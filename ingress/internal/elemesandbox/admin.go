package elemesandbox

import (
	"encoding/json"
	"net/http"

	"github.com/orderpipe/pipeline/plumbing/sandbox"
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
//
// The stats, faults and reset routes are the ones every sandbox serves (sandbox.Mount).
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
			sandbox.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		ids, err := s.Hold(in.AppID, in.Messages...)
		if err != nil {
			sandbox.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		sandbox.WriteJSON(w, http.StatusCreated, map[string]any{"msg_ids": ids})
	})
	mux.HandleFunc("GET /sandbox/held", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.HeldMessages(r.URL.Query().Get("app")))
	})
	mux.HandleFunc("GET /sandbox/confirms", func(w http.ResponseWriter, _ *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Confirms())
	})
	mux.HandleFunc("GET /sandbox/calls", func(w http.ResponseWriter, _ *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Calls())
	})
	mux.HandleFunc("POST /sandbox/apps", func(w http.ResponseWriter, r *http.Request) {
		var a App
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil || a.AppID == "" || a.AppKey == "" || a.Secret == "" {
			sandbox.WriteError(w, http.StatusBadRequest, "want {app_id, app_key, secret}")
			return
		}
		s.AddApp(a)
		sandbox.WriteJSON(w, http.StatusCreated, map[string]string{"app_id": a.AppID})
	})
	sandbox.Mount(mux, s)
	return mux
}
