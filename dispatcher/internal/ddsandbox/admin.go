package ddsandbox

import (
	"encoding/json"
	"net/http"
)

// Handler serves the API and the admin routes:
//
//	POST   /openapi/rest (and POST /)       the distristatus.update endpoint
//	GET    /sandbox/orders?shop=APPKEY      every order's state (all shops without shop)
//	GET    /sandbox/orders/{shop}/{order}   one order's state, 404 if never seen
//	GET    /sandbox/calls?shop=APPKEY       the call log, with the order ids of each call
//	GET    /sandbox/stats                   counters: calls (by outcome), orders accepted/rejected
//	GET    /sandbox/faults                  faults still armed
//	POST   /sandbox/faults                  arm a fault (JSON Fault)
//	DELETE /sandbox/faults                  clear every fault
//	POST   /sandbox/shops                   add or replace a shop (JSON Shop)
//	POST   /sandbox/reset                   forget orders, calls, counters and faults
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /openapi/rest", s.ServeAPI)
	mux.HandleFunc("POST /{$}", s.ServeAPI)
	mux.HandleFunc("GET /sandbox/orders", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Orders(r.URL.Query().Get("shop")))
	})
	mux.HandleFunc("GET /sandbox/orders/{shop}/{order}", func(w http.ResponseWriter, r *http.Request) {
		o, ok := s.Order(r.PathValue("shop"), r.PathValue("order"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown order"})
			return
		}
		writeJSON(w, http.StatusOK, o)
	})
	mux.HandleFunc("GET /sandbox/calls", func(w http.ResponseWriter, r *http.Request) {
		calls := s.Calls(r.URL.Query().Get("shop"))
		if calls == nil {
			calls = []Call{}
		}
		writeJSON(w, http.StatusOK, calls)
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
	mux.HandleFunc("POST /sandbox/shops", func(w http.ResponseWriter, r *http.Request) {
		var sh Shop
		if err := json.NewDecoder(r.Body).Decode(&sh); err != nil || sh.AppKey == "" || sh.Secret == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {app_key, app_secret, ...}"})
			return
		}
		s.AddShop(sh)
		writeJSON(w, http.StatusCreated, map[string]string{"app_key": sh.AppKey})
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
