// Package engine decides who receives an event, renders and signs each request, and delivers
// it at least once.
//
// TODO(engine helpers): replace this comment with the delivery state machine in a few
// paragraphs: emit (one transaction), claim (lease), attempt, complete or retry, rescue.
package engine
