// Starts GraphiQL on the page served at GET /graphql. Loaded as a file (not inline) so the
// page's Content-Security-Policy can forbid inline scripts.
//
// Queries go to POST /graphql and subscriptions to the WebSocket at /graphql/ws.
// `?query=...` (and optionally `?variables=...`) in the page URL prefill the editors, so a link
// can open GraphiQL with a query ready to run.
(function () {
  'use strict';
  var params = new URLSearchParams(window.location.search);
  var wsScheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: wsScheme + '//' + window.location.host + '/graphql/ws',
  });
  var props = { fetcher: fetcher, defaultEditorToolsVisibility: true };
  var query = params.get('query');
  if (query !== null) {
    props.query = query;
  }
  var variables = params.get('variables');
  if (variables !== null) {
    props.variables = variables;
  }
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, props));
})();
