/*
 * execgraph's GraphiQL bootstrap.
 *
 * Kept out of the HTML page so that the page needs no inline script: the
 * settings come from the JSON block with id "execgraph-ide-config" that
 * graph/ide.py writes into the page. It expects the globals React, ReactDOM,
 * GraphiQL and GraphiQLPluginExplorer from the vendored bundles, which load
 * before it.
 */
(function () {
  "use strict";

  const config = JSON.parse(
    document.getElementById("execgraph-ide-config").textContent,
  );

  // The query and variables travel in the address bar so that a
  // link to the page reproduces it; headers never do, as they may hold tokens.
  const parameters = {};
  for (const entry of window.location.search.slice(1).split("&")) {
    const eq = entry.indexOf("=");
    if (eq >= 0) {
      parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(
        entry.slice(eq + 1),
      );
    }
  }

  function updateURL(data) {
    Object.assign(parameters, data);
    const search = Object.keys(parameters)
      .filter((key) => Boolean(parameters[key]))
      .map(
        (key) =>
          encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]),
      )
      .join("&");
    history.replaceState(null, "", "?" + search);
  }

  // Queries and mutations go over HTTP to the endpoint; subscriptions go over
  // the graphql-transport-ws protocol on the same path.
  const fetchURL = new URL(config.endpoint, window.location.href);
  fetchURL.hash = "";
  const subscriptionURL = new URL(fetchURL.href);
  subscriptionURL.protocol = fetchURL.protocol === "https:" ? "wss:" : "ws:";

  const fetcher = GraphiQL.createFetcher({
    url: fetchURL.href,
    subscriptionUrl: subscriptionURL.href,
    headers: {},
  });

  const explorer = GraphiQLPluginExplorer.explorerPlugin();

  function ExecgraphGraphiQL() {
    const [query, setQuery] = React.useState(
      parameters.query || config.defaultQuery,
    );
    const [variables, setVariables] = React.useState(parameters.variables);

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultEditorToolsVisibility: true,
      query: query,
      variables: variables,
      onEditQuery: (value) => {
        setQuery(value);
        updateURL({ query: value });
      },
      onEditVariables: (value) => {
        setVariables(value);
        updateURL({ variables: value });
      },
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      // Tokens typed into the headers editor are not kept in the browser (shared school computers).
      shouldPersistHeaders: false,
    });
  }

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(ExecgraphGraphiQL));
})();
