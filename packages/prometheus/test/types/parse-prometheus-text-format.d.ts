// The parser ships no types: the shape it returns (prom2json's), as far as the tests read it.
declare module 'parse-prometheus-text-format' {
  function parsePrometheusTextFormat(text: string): Array<{
    name: string;
    help: string;
    type: string;
    metrics: Array<{ value?: string; labels?: Record<string, string> }>;
  }>;
  export default parsePrometheusTextFormat;
}
