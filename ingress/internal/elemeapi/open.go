package elemeapi

// This file is the one place that decides what the public sources leave open about
// getPushFailMsg and confirmPullMsg. Each decision names what was found, where, and the reading
// chosen: the most defensive one, i.e. the one under which a wrong guess costs a re-pull (which
// dedup absorbs) and never a lost message. Correct it here when Eleme's own page is at hand.
//
//  1. Request fields. Found: the SDKs pass one object parameter, "msgQueryRequest" /
//     "msgConfirmRequest" (MsgnewService in the Python and PHP SDKs); dianj.com.cn 21308 says the
//     call is "应用维度(appId)" with an empty token. Not found: the fields inside. Chosen:
//     msgQueryRequest = {"appId": <appId>, "pageSize": <n>}, msgConfirmRequest = {"appId":
//     <appId>, "msgIds": [<id>, …]}: the app is named explicitly, and confirm names every
//     message it confirms.
//  2. Confirm by ids or by batch. Not found. Chosen: by the ids of exactly the messages that
//     Kafka acknowledged. Confirming "the batch" could confirm a message that arrived after the
//     pull and was never written; confirming by id cannot.
//  3. Result shape. Found: getNonReachedOMessages returns List<OMessage> (dllen
//     eleme-openapi-java-sdk MessageService.java), OMessage = {requestId, type, message, shopId,
//     userId, timestamp, orderId}; getNonReachedMessages returns List<String>. Not found: the
//     msgNew result. Chosen: accept a bare array, or an object holding the array under any of
//     ListFields; each item an OMessage-like object or a string of one (ParseMessages).
//  4. The message id. Not found for msgNew. Chosen: the first of IDFields present, else
//     requestId (the push's own id, unique per push in every example).
//  5. Page size and paging. Not found. Chosen: DefaultPageSize per call; a full page is followed
//     by another call at once (confirmed messages leave the list, so no cursor is needed), a
//     short page ends the round. The sandbox caps pageSize at MaxPageSize.
//  6. Confirm's result. Not found. Chosen: an error answer, or a result that is false or an
//     object with "success": false, means "not confirmed": the messages are pulled again.
//  7. Rate limits. Found: EXCEED_LIMIT with 800 calls/s per app for getUnprocessOrders (dianj
//     21307). Not found for msgNew. Chosen: one call per app per interval (30 s), and on
//     EXCEED_LIMIT a backoff starting at a minute.

// Parameter names (1).
const (
	ParamQuery       = "msgQueryRequest"
	ParamConfirm     = "msgConfirmRequest"
	FieldAppID       = "appId"
	FieldPageSize    = "pageSize"
	FieldMsgIDs      = "msgIds"
	DefaultPageSize  = 50
	MaxPageSize      = 200
	fieldRequestID   = "requestId"
	fieldMessageBody = "message"
)

// ListFields are where an object result may hold the messages (3).
var ListFields = []string{"messages", "msgList", "msgs", "list", "data", "datas", "records", "items"}

// IDFields name a message's id for confirmPullMsg, in order of preference (4).
var IDFields = []string{"msgId", "messageId", "id"}
