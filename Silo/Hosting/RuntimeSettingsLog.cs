namespace Billing.Silo.Hosting;

/// <summary>
/// Logs the garbage collector the silo runs with, so an operator sees whether silo.env reached the process: its
/// settings are environment variables, which a launcher that forgets them drops without any error.
/// </summary>
public static partial class RuntimeSettingsLog
{
    /// <summary>The environment variable of silo.env that sets the first generation (read by the runtime at startup).</summary>
    public const string Gen0SizeVariable = "DOTNET_GCgen0size";

    public static WebApplication LogRuntimeSettings(this WebApplication app)
    {
        var gc = GC.GetConfigurationVariables();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RuntimeSettingsLog).FullName!);
        LogGarbageCollector(logger, gc.GetValueOrDefault("ServerGC") is true, gc.GetValueOrDefault("ConcurrentGC") is true,
            Convert.ToInt64(gc.GetValueOrDefault("GCGen0MaxBudget") ?? 0L, System.Globalization.CultureInfo.InvariantCulture),
            Environment.GetEnvironmentVariable(Gen0SizeVariable) ?? "not set: the runtime's default, see silo.env");
        return app;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Garbage collector: server {ServerGC}, concurrent {ConcurrentGC}, first generation budget at most {Gen0MaxBudget} bytes (DOTNET_GCgen0size {Gen0Size})")]
    private static partial void LogGarbageCollector(ILogger logger, bool serverGC, bool concurrentGC, long gen0MaxBudget, string gen0Size);
}
