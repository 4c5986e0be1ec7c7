<?php
// php crash.php CASE VALUE: runs one bug; PHP logs the uncaught error to stderr.
declare(strict_types=1);

require __DIR__ . '/src/Cart.php';
require __DIR__ . '/src/UserRepository.php';
require __DIR__ . '/src/ProfileController.php';
require __DIR__ . '/src/WebhookController.php';

[$script, $kind, $value] = $argv;
$n = (int) $value;
switch ($kind) {
    case 'type_error':
        (new App\Cart())->addFromRequest(['product' => "p-$n", 'qty' => '2']);
        break;
    case 'null_call':
        (new App\ProfileController(new App\UserRepository()))->show($n);
        break;
    case 'json_body':
        (new App\WebhookController())->receive('{"event": "paid", "id": ' . $n . ',}');
        break;
}
