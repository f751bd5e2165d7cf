// Runs pulsar-perf's producer or consumer command without PulsarPerfTestTool,
// whose command table needs broker jars that Maven Central here does not serve.
public final class FsPulsarPerf {
    public static void main(String[] args) throws Exception {
        String[] rest = java.util.Arrays.copyOfRange(args, 1, args.length);
        org.apache.pulsar.testclient.CmdBase cmd = switch (args[0]) {
            case "produce" -> new org.apache.pulsar.testclient.PerformanceProducer();
            case "consume" -> new org.apache.pulsar.testclient.PerformanceConsumer();
            default -> throw new IllegalArgumentException("produce or consume, not " + args[0]);
        };
        System.exit(cmd.run(rest) ? 0 : 1);
    }
}
