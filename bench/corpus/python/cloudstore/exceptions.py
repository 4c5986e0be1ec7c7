class ClientError(Exception):
    def __init__(self, code, operation, message):
        super().__init__(
            f"An error occurred ({code}) when calling the {operation} operation: {message}"
        )
