package rtdp.spark;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF2;

/**
 * A UMS batch record (envelope v2, docs/envelope-v2.md) read in one pass: its frame, its series
 * groups and every tuple, each point with the stream's native verdict. The Python reader
 * ({@code envelope.ums_batch}, {@code envelope.validation}) is the judge of every record; this
 * reads a record as Python reads it and accepts a point only where Python surely would, so the
 * happy path needs no Python. Anything it is unsure of is left to Python, never refused here.
 *
 * <p>Arguments: the Kafka record's bytes and the checks' configuration (JSON, built by
 * {@code ums_batch_parse.ums_points_config}). Returns a struct (its Spark type:
 * {@code ums_batch_parse.POINTS_TYPE}):
 *
 * <ul>
 *   <li>{@code readable}: Python's {@code read_frame} accepts the frame and its values fit the
 *       stream's columns; when false the record is judged whole by Python and nothing else is set;
 *   <li>{@code lean}: readable with exactly the five fields of 2.0, so a point can be judged by
 *       Python alone, in a one-point record of the same frame;
 *   <li>the frame's version, namespace, source, wave and collected_at;
 *   <li>{@code groups}: each series group's metric and tags (last key wins, as in Python) and its
 *       points: index in the record, the tuple's five values (null where of another JSON type),
 *       {@code ok} (every native check but the future one, which needs the receive time) and the
 *       tuple's JSON where not ok (quarantine and Python read it).
 * </ul>
 */
public final class UmsBatchPoints implements UDF2<byte[], String, Row> {
  private static final long serialVersionUID = 1L;

  private static final String PROTOCOL_TYPE = "data_increment_data";
  private static final int PROTOCOL_MAJOR = 2;
  private static final String[][] FIELDS = {
    {"ums_id_", "long"}, {"ums_ts_", "long"}, {"ums_op_", "string"}, {"point_key", "string"}, {"value", "double"}
  };
  // A name or tag (validation._NAME), anchored at the very end: a trailing line break is left to Python.
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._/-]+");
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
  private static final Row UNREADABLE =
      RowFactory.create(false, false, null, null, null, null, null, null);
  private static final int MAX_CACHED_METRICS = 100_000;

  private transient String configText;
  private transient Checks checks;
  private transient Blake2b128Hex pointKey;
  private transient Map<String, double[]> boundsByMetric;

  /** The limits of {@code PointRules} and the metric kinds' bounds, read once per configuration. */
  private static final class Checks {
    int maxRecordBytes;
    int maxRecordPoints;
    int maxMetricLength;
    int maxTags;
    int maxTagKeyLength;
    int maxTagValueLength;
    long minTimestampMs;
    boolean kinds; // false: no kinds configured, no bounds
    List<Pattern> kindRegexes = new ArrayList<>();
    List<double[]> kindBounds = new ArrayList<>();
    double[] defaultBounds;
  }

  @Override
  public Row call(byte[] value, String config) throws Exception {
    if (value == null || config == null) {
      return UNREADABLE;
    }
    Checks limits = checks(config);
    if (value.length > limits.maxRecordBytes) {
      return UNREADABLE;
    }
    JsonNode record;
    try {
      // Strict UTF-8 first: Jackson lets some malformed sequences through that Python refuses.
      String text =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(ByteBuffer.wrap(value))
              .toString();
      record = JSON.readTree(text);
    } catch (CharacterCodingException | com.fasterxml.jackson.core.JacksonException e) {
      return UNREADABLE;
    }
    if (record == null || !record.isObject() || !readableByPython(record)) {
      return UNREADABLE;
    }
    return frame(record, limits);
  }

  private Row frame(JsonNode record, Checks limits) {
    String version = version(record.get("protocol"));
    JsonNode schema = record.get("schema");
    JsonNode batch = record.get("batch");
    JsonNode payload = record.get("payload");
    if (version == null || !isObject(schema) || !isObject(batch) || payload == null || !payload.isArray()) {
      return UNREADABLE;
    }
    JsonNode namespace = schema.get("namespace");
    int fieldCount = fieldCount(schema.get("fields"));
    JsonNode source = batch.get("source");
    JsonNode wave = batch.get("wave");
    JsonNode collectedAt = batch.get("collected_at");
    JsonNode declared = batch.get("points");
    if (!isText(namespace)
        || fieldCount < 0
        || !isText(source)
        || !isInteger(wave)
        || !wave.canConvertToInt()
        || !isInteger(collectedAt)
        || !collectedAt.canConvertToLong()
        || !isInteger(declared)
        || payload.isEmpty()) {
      return UNREADABLE;
    }
    long total = 0;
    for (JsonNode group : payload) {
      if (!isObject(group) || !isText(group.get("metric")) || !stringMap(group.get("tags"))) {
        return UNREADABLE;
      }
      JsonNode tuples = group.get("tuples");
      if (tuples == null || !tuples.isArray() || tuples.isEmpty()) {
        return UNREADABLE;
      }
      total += tuples.size();
    }
    if (!declared.canConvertToLong() || declared.longValue() != total || total > limits.maxRecordPoints) {
      return UNREADABLE;
    }
    boolean lean = fieldCount == FIELDS.length;
    List<Row> groups = new ArrayList<>(payload.size());
    int at = 0;
    for (JsonNode group : payload) {
      String metric = group.get("metric").textValue();
      Map<String, String> tags = new LinkedHashMap<>();
      Iterator<Map.Entry<String, JsonNode>> entries = group.get("tags").fields();
      while (entries.hasNext()) {
        Map.Entry<String, JsonNode> entry = entries.next();
        tags.put(entry.getKey(), entry.getValue().textValue());
      }
      // The series' checks once per group: every point of it shares them.
      boolean seriesOk = lean && seriesOk(metric, tags, limits);
      String keyPrefix = seriesOk ? keyPrefix(metric, tags) : null;
      double[] bounds = seriesOk ? bounds(metric, limits) : null;
      JsonNode tuples = group.get("tuples");
      List<Row> points = new ArrayList<>(tuples.size());
      for (JsonNode tuple : tuples) {
        points.add(point(at++, tuple, fieldCount, seriesOk, keyPrefix, bounds, limits));
      }
      groups.add(RowFactory.create(metric, tags, points));
    }
    return RowFactory.create(
        true,
        lean,
        version,
        namespace.textValue(),
        source.textValue(),
        wave.intValue(),
        collectedAt.longValue(),
        groups);
  }

  private Row point(
      int at, JsonNode tuple, int fieldCount, boolean seriesOk, String keyPrefix, double[] bounds, Checks limits) {
    boolean shaped = tuple.isArray() && tuple.size() == fieldCount;
    JsonNode id = shaped ? tuple.get(0) : null;
    JsonNode ts = shaped ? tuple.get(1) : null;
    JsonNode op = shaped ? tuple.get(2) : null;
    JsonNode key = shaped ? tuple.get(3) : null;
    JsonNode value = shaped ? tuple.get(4) : null;
    Long umsId = isLong(id) ? id.longValue() : null;
    Long umsTs = isLong(ts) ? ts.longValue() : null;
    String umsOp = isText(op) ? op.textValue() : null;
    String pointKey = isText(key) ? key.textValue() : null;
    Double number = value != null && value.isNumber() ? value.doubleValue() : null;
    boolean retraction = "d".equals(umsOp);
    boolean ok =
        seriesOk
            && umsId != null
            && umsTs != null
            && pointKey != null
            && ("i".equals(umsOp) || "u".equals(umsOp) || retraction)
            && (retraction ? value.isNull() || isPlainNumber(value) : isPlainNumber(value))
            && (number == null || Double.isFinite(number))
            && umsTs >= limits.minTimestampMs
            && (retraction || inBounds(number, bounds))
            && pointKey.equals(hash(keyPrefix + umsTs));
    String tupleJson = ok ? null : json(tuple);
    return RowFactory.create(at, umsId, umsTs, umsOp, pointKey, number, ok, tupleJson);
  }

  // -- the frame as Python's read_frame checks it ------------------------------------------------

  /** The record's version where Python reads it (type and MAJOR), else null. */
  private static String version(JsonNode protocol) {
    if (!isObject(protocol) || !isText(protocol.get("type")) || !isText(protocol.get("version"))) {
      return null;
    }
    if (!PROTOCOL_TYPE.equals(protocol.get("type").textValue())) {
      return null;
    }
    String version = protocol.get("version").textValue();
    String[] parts = version.split("\\.", -1);
    if (parts.length != 2 || !asciiDigits(parts[0]) || !asciiDigits(parts[1])) {
      return null;
    }
    String major = parts[0].replaceFirst("^0+(?=.)", "");
    return major.equals(Integer.toString(PROTOCOL_MAJOR)) ? version : null;
  }

  /** How many fields the schema lists, where its first five are 2.0's and no name repeats; else -1. */
  private static int fieldCount(JsonNode fields) {
    if (fields == null || !fields.isArray() || fields.size() < FIELDS.length) {
      return -1;
    }
    List<String> names = new ArrayList<>(fields.size());
    for (JsonNode field : fields) {
      if (!isObject(field) || !isText(field.get("name"))) {
        return -1;
      }
      names.add(field.get("name").textValue());
    }
    for (int i = 0; i < FIELDS.length; i++) {
      JsonNode kind = fields.get(i).get("type");
      if (!names.get(i).equals(FIELDS[i][0]) || !isText(kind) || !kind.textValue().equals(FIELDS[i][1])) {
        return -1;
      }
    }
    return new java.util.HashSet<>(names).size() == names.size() ? names.size() : -1;
  }

  private static boolean stringMap(JsonNode tags) {
    if (!isObject(tags)) {
      return false;
    }
    for (JsonNode tagValue : tags) {
      if (!isText(tagValue)) {
        return false;
      }
    }
    return true;
  }

  /**
   * What Python's JSON reader refuses though Jackson reads it: a number too large for a double
   * (orjson: "number is infinity") and a lone surrogate in a string or a key.
   */
  private static boolean readableByPython(JsonNode node) {
    if (node.isTextual()) {
      return !hasLoneSurrogate(node.textValue());
    }
    if (node.isDouble()) {
      return Double.isFinite(node.doubleValue());
    }
    if (node.isObject()) {
      Iterator<Map.Entry<String, JsonNode>> entries = node.fields();
      while (entries.hasNext()) {
        Map.Entry<String, JsonNode> entry = entries.next();
        if (hasLoneSurrogate(entry.getKey()) || !readableByPython(entry.getValue())) {
          return false;
        }
      }
      return true;
    }
    if (node.isArray()) {
      for (JsonNode item : node) {
        if (!readableByPython(item)) {
          return false;
        }
      }
    }
    return true;
  }

  private static boolean hasLoneSurrogate(String text) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
          i++;
          continue;
        }
        return true;
      }
      if (Character.isLowSurrogate(c)) {
        return true;
      }
    }
    return false;
  }

  // -- a point's checks (validation.check_series, check_sample, check_point_key, kinds) ----------

  private static boolean seriesOk(String metric, Map<String, String> tags, Checks limits) {
    if (metric.length() > limits.maxMetricLength || !NAME.matcher(metric).matches()) {
      return false;
    }
    if (tags.size() > limits.maxTags) {
      return false;
    }
    for (Map.Entry<String, String> tag : tags.entrySet()) {
      String key = tag.getKey();
      String value = tag.getValue();
      if (key.length() > limits.maxTagKeyLength || value.length() > limits.maxTagValueLength) {
        return false;
      }
      if (!NAME.matcher(key).matches() || !NAME.matcher(value).matches()) {
        return false;
      }
    }
    return true;
  }

  /** keys.point_key's series part, "metric|k=v,...|", tags sorted by key (ASCII names: code points). */
  private static String keyPrefix(String metric, Map<String, String> tags) {
    String[] keys = tags.keySet().toArray(new String[0]);
    Arrays.sort(keys);
    StringBuilder prefix = new StringBuilder(metric.length() + 16 * keys.length + 2).append(metric).append('|');
    for (int i = 0; i < keys.length; i++) {
      if (i > 0) {
        prefix.append(',');
      }
      prefix.append(keys[i]).append('=').append(tags.get(keys[i]));
    }
    return prefix.append('|').toString();
  }

  /** The metric's kind bounds {low, high} (NaN: none), or null when no kinds are configured. */
  private double[] bounds(String metric, Checks limits) {
    if (!limits.kinds) {
      return null;
    }
    if (boundsByMetric == null || boundsByMetric.size() >= MAX_CACHED_METRICS) {
      boundsByMetric = new HashMap<>();
    }
    return boundsByMetric.computeIfAbsent(
        metric,
        name -> {
          for (int i = 0; i < limits.kindRegexes.size(); i++) {
            if (limits.kindRegexes.get(i).matcher(name).find()) {
              return limits.kindBounds.get(i);
            }
          }
          return limits.defaultBounds;
        });
  }

  private static boolean inBounds(Double value, double[] bounds) {
    if (bounds == null) {
      return true;
    }
    return !(value < bounds[0]) && !(value > bounds[1]); // NaN bounds compare false: unbounded
  }

  private String hash(String text) {
    if (pointKey == null) {
      pointKey = new Blake2b128Hex();
    }
    return pointKey.call(text);
  }

  // -- JSON types as Python reads them ----------------------------------------------------------

  private static boolean isObject(JsonNode node) {
    return node != null && node.isObject();
  }

  private static boolean isText(JsonNode node) {
    return node != null && node.isTextual();
  }

  /** A JSON integer (Python int); bool is not one. */
  private static boolean isInteger(JsonNode node) {
    return node != null && node.isIntegralNumber();
  }

  /** A JSON integer that fits a long. */
  private static boolean isLong(JsonNode node) {
    return node != null && (node.isInt() || node.isLong());
  }

  /** An int, a long or a double: a number Python turns into the same float. */
  private static boolean isPlainNumber(JsonNode node) {
    return node != null && (node.isInt() || node.isLong() || node.isDouble());
  }

  private static boolean asciiDigits(String text) {
    if (text.isEmpty()) {
      return false;
    }
    for (int i = 0; i < text.length(); i++) {
      if (text.charAt(i) < '0' || text.charAt(i) > '9') {
        return false;
      }
    }
    return true;
  }

  private static String json(JsonNode node) {
    try {
      return JSON.writeValueAsString(node);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      return null;
    }
  }

  // -- configuration ----------------------------------------------------------------------------

  private Checks checks(String config) throws Exception {
    if (!config.equals(configText)) {
      JsonNode node = JSON.readTree(config);
      Checks parsed = new Checks();
      parsed.maxRecordBytes = node.get("max_record_bytes").intValue();
      parsed.maxRecordPoints = node.get("max_record_points").intValue();
      parsed.maxMetricLength = node.get("max_metric_length").intValue();
      parsed.maxTags = node.get("max_tags").intValue();
      parsed.maxTagKeyLength = node.get("max_tag_key_length").intValue();
      parsed.maxTagValueLength = node.get("max_tag_value_length").intValue();
      parsed.minTimestampMs = node.get("min_timestamp_ms").longValue();
      JsonNode kinds = node.get("kinds");
      parsed.kinds = kinds != null && !kinds.isNull();
      if (parsed.kinds) {
        for (JsonNode rule : kinds.get("patterns")) {
          parsed.kindRegexes.add(Pattern.compile(rule.get("regex").textValue()));
          parsed.kindBounds.add(boundsOf(rule));
        }
        parsed.defaultBounds = boundsOf(kinds.get("default"));
      }
      checks = parsed;
      configText = config;
      boundsByMetric = null;
    }
    return checks;
  }

  private static double[] boundsOf(JsonNode rule) {
    JsonNode low = rule.get("low");
    JsonNode high = rule.get("high");
    return new double[] {
      low == null || low.isNull() ? Double.NaN : low.doubleValue(),
      high == null || high.isNull() ? Double.NaN : high.doubleValue()
    };
  }
}
