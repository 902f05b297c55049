using System.Diagnostics;
using System.Net;
using Billing.Testing;

namespace Billing.Cluster.Tests;

/// <summary>./run.sh as an operator runs it: its own PostgreSQL (in a throwaway data folder), a silo, the gateway.</summary>
public sealed class RunScriptTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Run_script_starts_everything_answers_ready_and_leaves_no_process_after_ctrl_c()
    {
        _ = Artifacts.GatewayDll; // run.sh --no-build starts the built gateway: fail here, clearly, when there is none
        var data = Path.Combine(Path.GetTempPath(), $"billing-runsh-{Guid.NewGuid():N}"[..26]);
        Directory.CreateDirectory(data);
        int pgPort = PostgresServer.FreePort(), siloPort = PostgresServer.FreePort(), gatewayPort = PostgresServer.FreePort(),
            dashboardPort = PostgresServer.FreePort(), httpPort = PostgresServer.FreePort();
        var markers = new[]
        {
            data, $"--Orleans:SiloPort={siloPort}", $"http://127.0.0.1:{httpPort}",
        };

        // A shell started in the background by a non-interactive shell (`./test.sh &`) inherits SIGINT ignored, and bash
        // cannot trap a signal ignored on entry: give run.sh the default disposition, as a terminal's Ctrl-C would find it.
        var run = ChildProcess.Start("run.sh", "env", ["--default-signal=INT", "bash", Artifacts.RunScript, "--silos", "1", "--no-build"], Artifacts.RepositoryRoot,
            new Dictionary<string, string?>
            {
                ["ConnectionStrings__Billing"] = null,
                ["BILLING_DATA_DIR"] = data,
                ["BILLING_PG_PORT"] = pgPort.ToString(),
                ["BILLING_SILO_PORT"] = siloPort.ToString(),
                ["BILLING_GATEWAY_PORT"] = gatewayPort.ToString(),
                ["BILLING_DASHBOARD_PORT"] = dashboardPort.ToString(),
                ["BILLING_HTTP_PORT"] = httpPort.ToString(),
                ["Orleans__ClusterId"] = $"runsh-{Guid.NewGuid():N}"[..16],
            });
        try
        {
            await run.WaitForOutputAsync("Ctrl-C stops everything.", TimeSpan.FromMinutes(3));
            output.WriteLine(run.Output);

            var silo = new Uri($"http://127.0.0.1:{dashboardPort}");
            Assert.Equal(HttpStatusCode.OK, (await ProcessCluster.Http.GetAsync(new Uri(silo, "/health/ready"))).StatusCode);
            Assert.Contains("Orleans Dashboard", await ProcessCluster.Http.GetStringAsync(silo));
            // run.sh builds and starts the gateway: it must be up (a missing gateway fails the test, not weakens it).
            Assert.Equal(HttpStatusCode.OK, (await ProcessCluster.Http.GetAsync($"http://127.0.0.1:{httpPort}/health/ready")).StatusCode);
            Assert.Contains("export TOKEN=ey", run.Output);
            // run.sh starts the silo with silo.env (the GC's first generation), and the silo says what it got.
            Assert.Contains("(DOTNET_GCgen0size 0x400000)", await File.ReadAllTextAsync(Path.Combine(data, "logs", "silo-0.log")));

            Assert.NotEmpty(Leftovers(markers));

            run.Signal(ChildSignal.Interrupt);
            Assert.True(await run.WaitForExitAsync(TimeSpan.FromSeconds(90)), $"run.sh did not stop after SIGINT.\n{run.Tail()}");
            output.WriteLine(run.Tail(10));
            Assert.Contains("[run.sh] stopped", run.Output);

            var left = Leftovers(markers);
            Assert.True(left.Count == 0, "left behind:\n" + string.Join('\n', left));
        }
        finally
        {
            if (!run.HasExited)
            {
                run.Signal(ChildSignal.Interrupt);
                await run.WaitForExitAsync(TimeSpan.FromSeconds(60));
            }

            await run.DisposeAsync();
            foreach (var (pid, _) in Leftovers(markers))
            {
                try
                {
                    Process.GetProcessById(pid).Kill(entireProcessTree: true);
                }
                catch (Exception)
                {
                    // Gone already.
                }
            }

            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Processes whose command line names this run's data folder or ports (postgres -D, the silo, the gateway).</summary>
    private static List<(int Pid, string CommandLine)> Leftovers(string[] markers)
    {
        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId) continue;
            string commandLine;
            try
            {
                commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
            }
            catch (Exception)
            {
                continue;
            }

            if (commandLine.Length > 0 && markers.Any(m => commandLine.Contains(m, StringComparison.Ordinal))) found.Add((pid, commandLine));
        }

        return found;
    }
}
