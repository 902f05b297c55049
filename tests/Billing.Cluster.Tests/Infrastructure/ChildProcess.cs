using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace Billing.Cluster.Tests.Infrastructure;

/// <summary>
/// A process a test started: its output kept in memory (and mirrored to a log file), killed with its whole
/// process tree on <see cref="DisposeAsync"/> and, failing that, when the test process exits. No process
/// outlives the test run, whether the test passed, failed or threw.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<int, ChildProcess> Running = new();
    private static readonly string LogDirectory = Path.Combine(Path.GetTempPath(), "billing-cluster-tests");

    private readonly Process process;
    private readonly StringBuilder output = new();
    private readonly StreamWriter log;
    private readonly TaskCompletionSource exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    static ChildProcess()
    {
        Directory.CreateDirectory(LogDirectory);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var child in Running.Values) child.KillNow();
        };
    }

    private ChildProcess(string name, Process process, string logPath)
    {
        Name = name;
        this.process = process;
        LogPath = logPath;
        log = new StreamWriter(logPath, append: false) { AutoFlush = true };
    }

    public string Name { get; }

    public int Id => process.Id;

    public string LogPath { get; }

    public bool HasExited => process.HasExited;

    public int? ExitCode => process.HasExited ? process.ExitCode : null;

    public Task Exited => exited.Task;

    public string Output
    {
        get
        {
            lock (output) return output.ToString();
        }
    }

    /// <summary>The last lines of the output, for assertion messages.</summary>
    public string Tail(int lines = 40)
    {
        var all = Output.Split('\n');
        return $"--- {Name} (pid {Id}{(HasExited ? $", exited {ExitCode}" : "")}), last {Math.Min(lines, all.Length)} lines of {LogPath} ---\n"
               + string.Join('\n', all.TakeLast(lines));
    }

    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, string workingDirectory,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        // The children must not inherit the test host's own settings (e.g. its environment name or URLs).
        info.Environment.Remove("ASPNETCORE_URLS");
        info.Environment.Remove("DOTNET_ENVIRONMENT");
        info.Environment.Remove("ASPNETCORE_ENVIRONMENT");
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) info.Environment.Remove(key);
            else info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var logPath = Path.Combine(LogDirectory, $"{DateTime.UtcNow:HHmmss}-{name}-{Guid.NewGuid():N}"[..40] + ".log");
        var child = new ChildProcess(name, process, logPath);
        process.OutputDataReceived += (_, e) => child.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        process.Exited += (_, _) => child.exited.TrySetResult();
        process.Start();
        Running[process.Id] = child;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Starts <c>dotnet &lt;dll&gt; args</c> in the dll's folder.</summary>
    public static ChildProcess StartDotnet(string name, string dllPath, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null) =>
        Start(name, "dotnet", new[] { dllPath }.Concat(arguments), Path.GetDirectoryName(dllPath)!, environment);

    private void Append(string? line)
    {
        if (line is null) return;
        lock (output)
        {
            output.Append(line).Append('\n');
            try
            {
                log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>Waits until a line of the output contains <paramref name="text"/>.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Output.Contains(text, StringComparison.Ordinal)) return;
            if (HasExited) throw new InvalidOperationException($"{Name} exited before printing '{text}'.\n{Tail()}");
            await Task.Delay(200);
        }

        throw new TimeoutException($"{Name} did not print '{text}' within {timeout}.\n{Tail()}");
    }

    /// <summary>Sends a POSIX signal (e.g. INT, TERM) to the process itself.</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {process.Id}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    /// <summary><c>kill -9</c> of the process alone (a silo crash).</summary>
    public void KillHard()
    {
        try
        {
            process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
        }
    }

    private void KillNow()
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (Exception)
        {
            // Already gone.
        }
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        var finished = await Task.WhenAny(exited.Task, Task.Delay(timeout));
        if (finished != exited.Task) return false;
        await process.WaitForExitAsync(); // drains the output
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        KillNow();
        await WaitForExitAsync(TimeSpan.FromSeconds(10));
        Running.TryRemove(process.Id, out _);
        lock (output) log.Dispose();
        process.Dispose();
    }
}
