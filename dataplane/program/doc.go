// Package program turns a model.State into the datapath's map contents and
// keeps them so: it allocates service and backend IDs (restoring them from
// the maps on start, never flushing), builds Maglev rings, diffs the desired
// contents against what the maps hold and writes only the difference,
// make-before-break (backends and rings before the frontends that lead to
// them, deletions last). A failure of one service is reported for that
// service; every other service is still programmed. Apply is idempotent.
package program
