// Prints the tables Kafka generates for its protocol guide (https://kafka.apache.org/protocol): `errors` gives the
// "Error Codes" table (Errors.toHtml), `protocol` the request/response grammars (Protocol.toHtml). Both methods are
// private in kafka-clients, hence the reflection. Run with kafka-clients on the class path, for example:
//   javac -cp "<libs>/*" -d /tmp KafkaDocs.java && java -cp "<libs>/*:/tmp" KafkaDocs errors > kafka-4.4.0-errors.html
import java.lang.reflect.Method;

public class KafkaDocs {
  public static void main(String[] args) throws Exception {
    String className = args[0].equals("errors")
        ? "org.apache.kafka.common.protocol.Errors"
        : "org.apache.kafka.common.protocol.Protocol";
    Method toHtml = Class.forName(className).getDeclaredMethod("toHtml");
    toHtml.setAccessible(true);
    System.out.println((String) toHtml.invoke(null));
  }
}
