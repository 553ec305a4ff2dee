package loadgen

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// NoopHandler is the HTTP ceiling of the benchmark: the same framework (echo) and the same routes
// as the ingress, answering 200 with the platform's success body and doing nothing else (it
// does not even read the body).
func NoopHandler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/v1/callbacks/dianwoda", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"code": "success"})
	})
	e.POST("/v1/callbacks/eleme", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"message": "ok"})
	})
	return e
}
