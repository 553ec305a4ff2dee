package ddsandbox

import (
	"encoding/json"
	"net/http"

	"github.com/orderpipe/pipeline/plumbing/sandbox"
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
//
// The stats, faults and reset routes are the ones every sandbox serves (sandbox.Mount).
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /openapi/rest", s.ServeAPI)
	mux.HandleFunc("POST /{$}", s.ServeAPI)
	mux.HandleFunc("GET /sandbox/orders", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Orders(r.URL.Query().Get("shop")))
	})
	mux.HandleFunc("GET /sandbox/orders/{shop}/{order}", func(w http.ResponseWriter, r *http.Request) {
		o, ok := s.Order(r.PathValue("shop"), r.PathValue("order"))
		if !ok {
			sandbox.WriteError(w, http.StatusNotFound, "unknown order")
			return
		}
		sandbox.WriteJSON(w, http.StatusOK, o)
	})
	mux.HandleFunc("GET /sandbox/calls", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Calls(r.URL.Query().Get("shop")))
	})
	mux.HandleFunc("POST /sandbox/shops", func(w http.ResponseWriter, r *http.Request) {
		var sh Shop
		if err := json.NewDecoder(r.Body).Decode(&sh); err != nil || sh.AppKey == "" || sh.Secret == "" {
			sandbox.WriteError(w, http.StatusBadRequest, "want {app_key, app_secret, ...}")
			return
		}
		s.AddShop(sh)
		sandbox.WriteJSON(w, http.StatusCreated, map[string]string{"app_key": sh.AppKey})
	})
	sandbox.Mount(mux, s)
	return mux
}
